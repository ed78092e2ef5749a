/* Anonymous mmaps by call stack.
 *
 * The common path of each call is the real call and one compare: a
 * thread's byte countdown of its own (mm_countdown), drawn from the same
 * random stream as malloc's, so that a mapping of n bytes is sampled with
 * probability 1 - exp(-n/rate) and stands for 1/p mappings. munmap, mremap
 * and madvise look at the table only while it holds a sampled mapping.
 *
 * The allocator's own mappings (jemalloc's and tcmalloc's chunks, which
 * they map through the PLT; glibc maps its large blocks and arenas with
 * internal calls that never reach an interposer) are told apart on the
 * sampled path only: a mapping with a frame in the object that holds the
 * real malloc (its caller, or one further out: tcmalloc's first stack
 * trace has libunwind map its cache) is the allocator's, and already
 * counted as heap. glibc's object is not looked at (it maps nothing
 * through here, and every thread's outermost frames are in it). An
 * allocator linked into the executable itself cannot be told apart this
 * way; its mappings count as the program's.
 *
 * The table: MM_SLOTS entries, each claimed by CAS of its start from 0 to
 * MM_BUSY, filled, and published by a release store of the start. A thread
 * changing an entry (an munmap of part of it, an mremap) takes it by CAS
 * of the start to MM_BUSY and stores it back; a reader that finds an entry
 * busy skips it (a dump, a change racing with another change of the same
 * mapping, which programs do not make). A full table drops the sample and
 * counts it. What an entry counts is address space mapped, less what
 * madvise(MADV_DONTNEED/MADV_FREE) gave back; the resident size of each
 * mapping is in /proc/self/smaps. */
#include "mmaps.h"

#include <errno.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "export.h"
#include "outbuf.h"
#include "real.h"
#include "sampler.h"
#include "stacktab.h"
#include "thread_state.h"
#include "tracer_state.h"
#include "unwind.h"

#define MM_SLOTS 4096
#define MM_BUSY ((uintptr_t)1)

struct mm_slot {
	_Atomic uintptr_t start; /* 0 = free, MM_BUSY = being changed */
	uintptr_t end;
	uint64_t bytes;  /* of [start, end), still mapped and not given back */
	double weight;   /* mappings this sample stands for (1/p) */
	uint32_t stack;  /* stacktab id */
};

static struct mm_slot *slots;
static _Atomic int slots_state; /* 0 none, 1 mapping, 2 ready, -1 failed */
static _Atomic unsigned slots_hi; /* slots ever used: [0, hi) */
static _Atomic unsigned live;     /* entries in use */
static _Atomic uint64_t dropped;
static __thread uint64_t mm_countdown; /* 0 = not drawn yet */
static uintptr_t alloc_lo, alloc_hi;    /* the real malloc's object */
static _Atomic int alloc_known;

static struct mm_slot *table(void)
{
	int s = atomic_load_explicit(&slots_state, memory_order_acquire);
	if (s == 2)
		return slots;
	int none = 0;
	if (s == 0 && atomic_compare_exchange_strong(&slots_state, &none, 1)) {
		slots = arena_map(MM_SLOTS * sizeof(*slots));
		atomic_store_explicit(&slots_state, slots ? 2 : -1,
				      memory_order_release);
		return slots;
	}
	return NULL; /* another thread maps it: this sample is dropped */
}

/* Whether pc lies in the object holding the real malloc, unless that is
 * the executable or glibc's. */
static int from_allocator(uintptr_t pc)
{
	if (!atomic_load_explicit(&alloc_known, memory_order_acquire)) {
		struct dl_find_object o, m;
		if (ht_real.malloc &&
		    _dl_find_object((void *)ht_real.malloc, &o) == 0 &&
		    o.dlfo_link_map && o.dlfo_link_map->l_name &&
		    o.dlfo_link_map->l_name[0] && /* not the executable */
		    !(_dl_find_object((void *)gnu_get_libc_version, &m) == 0 &&
		      m.dlfo_map_start == o.dlfo_map_start)) {
			alloc_lo = (uintptr_t)o.dlfo_map_start;
			alloc_hi = (uintptr_t)o.dlfo_map_end;
		}
		atomic_store_explicit(&alloc_known, 1, memory_order_release);
	}
	return pc >= alloc_lo && pc < alloc_hi;
}

/* Whether any of the frames lies in the allocator's object. */
static int inside_allocator(const uintptr_t *frames, int n)
{
	for (int i = 0; i < n; i++)
		if (from_allocator(frames[i]))
			return 1;
	return 0;
}

static void remember(uintptr_t p, size_t n, uint32_t stack)
{
	struct mm_slot *t = table();
	if (!t) {
		atomic_fetch_add(&dropped, 1);
		return;
	}
	for (unsigned i = 0; i < MM_SLOTS; i++) {
		uintptr_t zero = 0;
		if (atomic_load_explicit(&t[i].start, memory_order_relaxed) ||
		    !atomic_compare_exchange_strong(&t[i].start, &zero, MM_BUSY))
			continue;
		t[i].end = p + n;
		t[i].bytes = n;
		t[i].weight = sampler_weight(n);
		t[i].stack = stack;
		atomic_store_explicit(&t[i].start, p, memory_order_release);
		unsigned hi = atomic_load(&slots_hi);
		while (hi < i + 1 &&
		       !atomic_compare_exchange_weak(&slots_hi, &hi, i + 1))
			;
		atomic_fetch_add(&live, 1);
		return;
	}
	atomic_fetch_add(&dropped, 1);
}

__attribute__((noinline)) static void mmap_slow(void *p, size_t n,
						uintptr_t caller)
{
	struct ht_thread *th = &ht_thread;
	if (th->guard || tracer_state() != TRACER_ON)
		return;
	if (!mm_countdown) { /* a new thread: start at a random point */
		mm_countdown = sampler_draw();
		if (n < mm_countdown) {
			mm_countdown -= n;
			return;
		}
	}
	mm_countdown = sampler_draw();
	if (from_allocator(caller))
		return;
	int was = guard_enter(), saved = errno;
	const uintptr_t *frames;
	int nf = unwind_capture(&frames, (int)ht_config.max_frames);
	struct stack_rec *r =
	    nf < 0 || inside_allocator(frames, nf)
		? NULL
		: stacktab_intern(&ht_stacks, frames, (uint32_t)nf);
	if (r)
		remember((uintptr_t)p, n, stacktab_id(&ht_stacks, r));
	errno = saved;
	guard_restore(was);
}

/* [a, b) is no longer mapped (unmap) or no longer resident (madvise):
 * each sampled mapping it overlaps counts the overlap less; an unmapped
 * entry left with nothing is freed. */
__attribute__((noinline)) static void forget_range(uintptr_t a, uintptr_t b,
						   int unmap)
{
	struct mm_slot *t = slots;
	unsigned hi = atomic_load(&slots_hi);
	for (unsigned i = 0; t && i < hi; i++) {
		uintptr_t s = atomic_load_explicit(&t[i].start,
						   memory_order_acquire);
		if (s <= MM_BUSY || s >= b ||
		    !atomic_compare_exchange_strong(&t[i].start, &s, MM_BUSY))
			continue;
		uintptr_t lo = a > s ? a : s, e = t[i].end;
		uintptr_t hi_ = b < e ? b : e;
		if (lo >= hi_) {
			atomic_store_explicit(&t[i].start, s,
					      memory_order_release);
			continue;
		}
		uint64_t gone = hi_ - lo;
		t[i].bytes = t[i].bytes > gone ? t[i].bytes - gone : 0;
		if (unmap && (t[i].bytes == 0 || (lo == s && hi_ == e))) {
			atomic_store_explicit(&t[i].start, 0,
					      memory_order_release);
			atomic_fetch_sub(&live, 1);
		} else {
			atomic_store_explicit(&t[i].start, s,
					      memory_order_release);
		}
	}
}

static void *real_mmap(void *addr, size_t n, int prot, int flags, int fd,
		       off_t off)
{
	if (ht_real.mmap)
		return ht_real.mmap(addr, n, prot, flags, fd, off);
	long r = syscall(SYS_mmap, addr, n, prot, flags, fd, off);
	return (void *)r;
}

HT_EXPORT void *mmap(void *addr, size_t n, int prot, int flags, int fd,
		     off_t off)
{
	if ((flags & MAP_FIXED) && atomic_load_explicit(&live,
							 memory_order_relaxed))
		forget_range((uintptr_t)addr, (uintptr_t)addr + n, 1);
	void *p = real_mmap(addr, n, prot, flags, fd, off);
	if (!(flags & MAP_ANONYMOUS) || p == MAP_FAILED || !ht_config.mmap)
		return p;
	if (__builtin_expect(n < mm_countdown, 1)) {
		mm_countdown -= n;
		return p;
	}
	mmap_slow(p, n, (uintptr_t)__builtin_return_address(0));
	return p;
}

HT_EXPORT void *mmap64(void *addr, size_t n, int prot, int flags, int fd,
		       off_t off) __attribute__((alias("mmap")));

HT_EXPORT int munmap(void *addr, size_t n)
{
	int rc = ht_real.munmap ? ht_real.munmap(addr, n)
				: (int)syscall(SYS_munmap, addr, n);
	if (rc == 0 && atomic_load_explicit(&live, memory_order_relaxed))
		forget_range((uintptr_t)addr, (uintptr_t)addr + n, 1);
	return rc;
}

HT_EXPORT int madvise(void *addr, size_t n, int advice)
{
	int rc = ht_real.madvise ? ht_real.madvise(addr, n, advice)
				 : (int)syscall(SYS_madvise, addr, n, advice);
	if (rc == 0 && (advice == MADV_DONTNEED || advice == MADV_FREE) &&
	    atomic_load_explicit(&live, memory_order_relaxed))
		forget_range((uintptr_t)addr, (uintptr_t)addr + n, 0);
	return rc;
}

/* A sampled mapping moved or resized keeps its stack and weight. */
static void moved(uintptr_t old, size_t old_n, uintptr_t p, size_t n)
{
	struct mm_slot *t = slots;
	unsigned hi = atomic_load(&slots_hi);
	for (unsigned i = 0; t && i < hi; i++) {
		uintptr_t s = old;
		if (!atomic_compare_exchange_strong(&t[i].start, &s, MM_BUSY))
			continue;
		t[i].end = p + n;
		t[i].bytes = t[i].bytes + n > old_n ? t[i].bytes + n - old_n : 0;
		atomic_store_explicit(&t[i].start, p, memory_order_release);
		return;
	}
}

HT_EXPORT void *mremap(void *old, size_t old_n, size_t n, int flags, ...)
{
	void *want = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		want = va_arg(ap, void *);
		va_end(ap);
	}
	void *p = ht_real.mremap
		      ? ht_real.mremap(old, old_n, n, flags, want)
		      : (void *)syscall(SYS_mremap, old, old_n, n, flags, want);
	if (p != MAP_FAILED && atomic_load_explicit(&live,
						    memory_order_relaxed))
		moved((uintptr_t)old, old_n, (uintptr_t)p, n);
	return p;
}

/* The resident bytes of [lo, hi), by mincore over a buffer on the stack:
 * the kernel merges neighbouring anonymous mappings into one entry of
 * smaps, so a mapping's share of an entry's resident bytes is asked of
 * the pages themselves. */
static uint64_t resident(uintptr_t lo, uintptr_t hi)
{
	unsigned char vec[4096];
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uint64_t bytes = 0;
	lo &= ~(page - 1);
	while (lo < hi) {
		uintptr_t n = (hi - lo + page - 1) / page;
		if (n > sizeof(vec))
			n = sizeof(vec);
		if (mincore((void *)lo, n * page, vec) != 0)
			return bytes;
		for (uintptr_t i = 0; i < n; i++)
			bytes += (vec[i] & 1) ? page : 0;
		lo += n * page;
	}
	return bytes;
}

/* A dump's scratch: estimates summed per stack. */
struct mm_sum {
	uint32_t stack;
	double objects, bytes;
};

void mmaps_put(struct outbuf *o)
{
	static struct mm_sum *sums;
	struct mm_slot *t = slots;
	unsigned hi = atomic_load(&slots_hi), n = 0;
	double objects = 0, bytes = 0;
	if (t && hi && !sums)
		sums = arena_map(MM_SLOTS * sizeof(*sums));
	for (unsigned i = 0; sums && i < hi; i++) {
		uintptr_t s = atomic_load_explicit(&t[i].start,
						   memory_order_acquire);
		if (s <= MM_BUSY)
			continue;
		uint32_t stack = t[i].stack;
		double w = t[i].weight, b = w * (double)t[i].bytes;
		if (atomic_load_explicit(&t[i].start, memory_order_acquire) != s)
			continue; /* changed while read */
		unsigned j = 0;
		while (j < n && sums[j].stack != stack)
			j++;
		if (j == n)
			sums[n++] = (struct mm_sum){stack, 0, 0};
		sums[j].objects += w;
		sums[j].bytes += b;
		objects += w;
		bytes += b;
	}
	for (unsigned j = 0; j < n; j++) {
		const struct stack_rec *r = stacktab_rec(&ht_stacks, sums[j].stack);
		out_str(o, "# mmap: ");
		out_u64(o, (uint64_t)(sums[j].objects + 0.5));
		out_field_u64(o, (uint64_t)(sums[j].bytes + 0.5));
		out_str(o, " @");
		out_frames(o, r->frames, r->nframes);
		out_str(o, "\n");
	}
	/* Each sampled mapping's place, weight and resident bytes, for
	 * `rss`. */
	for (unsigned i = 0; i < hi; i++) {
		uintptr_t s = atomic_load_explicit(&t[i].start,
						   memory_order_acquire);
		if (s <= MM_BUSY)
			continue;
		uintptr_t end = t[i].end;
		double w = t[i].weight;
		const struct stack_rec *r = stacktab_rec(&ht_stacks, t[i].stack);
		if (atomic_load_explicit(&t[i].start, memory_order_acquire) != s)
			continue;
		out_str(o, "# mmap_at: 0x");
		out_hex(o, s);
		out_str(o, " 0x");
		out_hex(o, end);
		out_str(o, " ");
		out_fixed3(o, w);
		out_field_u64(o, resident(s, end));
		out_str(o, " @");
		out_frames(o, r->frames, r->nframes);
		out_str(o, "\n");
	}
	out_str(o, "# mmap_total: ");
	out_u64(o, (uint64_t)(objects + 0.5));
	out_field_u64(o, (uint64_t)(bytes + 0.5));
	out_field_u64(o, atomic_load(&dropped));
	out_str(o, "\n");
}
