/* Stacks are walked here by the call frame rules of cfi.c, cached per
 * return address, so that a sample costs a few loads per frame. libunwind
 * takes over for any stack the walker cannot finish: a frame whose rule
 * it does not know (signal frames, CFA expressions, code without unwind
 * tables) or a thread whose stack bounds are unknown. Its results are the
 * same, frame for frame: tests/test_unwind.py compares the two.
 *
 * libunwind is loaded with dlopen(RTLD_LOCAL) rather than linked: a
 * DT_NEEDED libunwind.so.8 would put its _Unwind_RaiseException and weak
 * backtrace into the host's global symbol scope and take over C++
 * exception handling. Privately loaded, only the few functions looked up
 * here are used, and the host's own unwinder stays in charge of throws.
 *
 * libunwind (or glibc's backtrace) runs on the thread's walk stack
 * (framebuf.h, altstack.h): its context and cursor alone are 2 KiB, and
 * the whole walk about 5 KiB, which a program's small thread stack would
 * have to spare on every sample. The frame walker needs no such room and
 * stays on the program's stack.
 *
 * Frames inside libheaptrace.so and the unwinder are dropped from the top
 * of each capture by address range, so inlining decisions in the tracer's
 * own code never change what is recorded (the switch to the walk stack
 * among them). */
#include "unwind.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <stdatomic.h>
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>
#include <sys/auxv.h>

#include "altstack.h"
#include "cfi.h"
#include "config.h"
#include "export.h"
#include "forkguard.h"
#include "framebuf.h"
#include "log.h"
#include "real.h"
#include "thread_state.h"

#define STR2(x) #x
#define STR(x) STR2(x)

static int (*unw_bt)(void **, int);
static const char *name = "none";
static int walker_on; /* cfi_init() succeeded and HEAPTRACE_UNWIND allows */
/* unwind_load() has run: unw_bt, or glibc's backtrace(), may be called.
 * Release/acquire: another thread that sees it sees unw_bt. */
static _Atomic int loaded;
static _Atomic uint64_t handed_over; /* stacks the walker left to libunwind */

#define OWN_RANGES 8
static struct {
	uintptr_t lo, hi;
} own[OWN_RANGES];
static int n_own;

struct find_arg {
	uintptr_t addr;
};

/* Adds the executable segments of the object that holds arg->addr. */
static int add_ranges(struct dl_phdr_info *info, size_t size, void *data)
{
	struct find_arg *arg = data;
	(void)size;
	int hit = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && arg->addr >= lo &&
		    arg->addr < lo + ph->p_memsz)
			hit = 1;
	}
	if (!hit)
		return 0;
	for (int i = 0; i < info->dlpi_phnum && n_own < OWN_RANGES; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		own[n_own].lo = info->dlpi_addr + ph->p_vaddr;
		own[n_own].hi = own[n_own].lo + ph->p_memsz;
		n_own++;
	}
	return 1;
}

static void add_own_object(const void *addr)
{
	struct find_arg arg = {(uintptr_t)addr};
	dl_iterate_phdr(add_ranges, &arg);
}

/* The dynamic loader's mapping: its entry code (_dl_start_user, which
 * calls the constructors of the libraries loaded at start) has no call
 * frame information, and a stack that reaches it ends there, as
 * libunwind's does. */
static uintptr_t loader_lo, loader_hi;

static void find_loader(void)
{
	struct dl_find_object obj;
	unsigned long base = getauxval(AT_BASE); /* 0: run as ld.so PROG */
	if (base && _dl_find_object((void *)base, &obj) == 0) {
		loader_lo = (uintptr_t)obj.dlfo_map_start;
		loader_hi = (uintptr_t)obj.dlfo_map_end;
	}
}

static int is_own(uintptr_t pc)
{
	for (int i = 0; i < n_own; i++)
		if (pc >= own[i].lo && pc < own[i].hi)
			return 1;
	return 0;
}

/* Functions of the next allocator a capture may start with, dropped from
 * its top like the tracer's own frames: libstdc++'s operator new, which
 * heaptrace's reaches by a tail call and which calls malloc (cxxnew.c).
 * They have no frame pointers, so the walker follows their rules and the
 * frames are dropped afterwards. */
#define ENTRY_RANGES 8
static struct {
	uintptr_t lo, hi;
} entry[ENTRY_RANGES];
static _Atomic int n_entry;

int unwind_skip_function(const void *fn)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	int n = atomic_load_explicit(&n_entry, memory_order_relaxed);
	if (n == ENTRY_RANGES || !fn ||
	    !dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym ||
	    !sym->st_size || info.dli_saddr != fn)
		return -1;
	entry[n].lo = (uintptr_t)fn;
	entry[n].hi = (uintptr_t)fn + sym->st_size;
	atomic_store_explicit(&n_entry, n + 1, memory_order_release);
	return 0;
}

static int is_entry(uintptr_t pc)
{
	int n = atomic_load_explicit(&n_entry, memory_order_acquire);
	for (int i = 0; i < n; i++)
		if (pc >= entry[i].lo && pc < entry[i].hi)
			return 1;
	return 0;
}

/* Drops the leading frames that are in entry[]; the count left. */
static int drop_entries(uintptr_t *frames, int n)
{
	int skip = 0;
	while (skip < n && is_entry(frames[skip]))
		skip++;
	if (skip)
		memmove(frames, frames + skip, (size_t)(n - skip) * sizeof(*frames));
	return n - skip;
}

void unwind_init(void)
{
	add_own_object((const void *)unwind_init);
#ifdef __x86_64__ /* the rules cfi.c follows are x86-64's */
	walker_on = !ht_config.libunwind_only && cfi_init() == 0;
#endif
	if (walker_on) {
		find_loader();
		name = "cfi";
	}
}

int unwind_walker_on(void)
{
	return walker_on;
}

void unwind_load(void)
{
	void *lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
	void *bt = lib ? dlsym(lib, "unw_backtrace") : NULL;
	if (bt) {
		void *policy = dlsym(lib, STR(UNW_OBJ(set_caching_policy)));
		void *space = dlsym(lib, STR(UNW_OBJ(local_addr_space)));
		memcpy(&unw_bt, &bt, sizeof(bt));
		name = walker_on ? "cfi+libunwind" : "libunwind";
		add_own_object(bt);
		if (policy && space) {
			int (*set)(unw_addr_space_t, unw_caching_policy_t);
			memcpy(&set, &policy, sizeof(policy));
			set(*(unw_addr_space_t *)space, UNW_CACHE_PER_THREAD);
		}
	} else {
		ht_log("cannot load libunwind.so.8 (%s); using glibc's "
		       "backtrace() for stacks, which is slower",
		       lib ? "no unw_backtrace" : "not installed");
		name = walker_on ? "cfi+glibc-backtrace" : "glibc-backtrace";
		void *probe[1];
		backtrace(probe, 1); /* loads libgcc_s now, not inside malloc */
	}
	atomic_store_explicit(&loaded, 1, memory_order_release);
}

/* The most a stack walk reads above where it starts: far more than any
 * thread's stack, and a bound on how far a wrong rule could lead it. */
#define STACK_SPAN_LIMIT ((uintptr_t)1 << 30)

void unwind_thread_start(uintptr_t stack_hi)
{
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	if (here < stack_hi && stack_hi - here < STACK_SPAN_LIMIT)
		ht_thread.stack_hi = stack_hi;
}

/* Walks the stack by cached rules; -1 where libunwind must do it. Every
 * read is of an aligned word in [sp, stack_hi), which this thread's stack
 * maps whole, and the stack pointer only moves up, so a wrong rule can
 * give wrong frames but neither fault nor loop. (A coroutine's stack of
 * the program's making lies elsewhere: a walk from one above stack_hi is
 * left to libunwind, one below ends at the coroutine's outermost frame,
 * whose rule marks the end, as glibc's makecontext does.) */
static int walk(uintptr_t *frames, int max)
{
	uintptr_t hi = ht_thread.stack_hi;
	const uintptr_t *fp = __builtin_frame_address(0);
	uintptr_t sp = (uintptr_t)fp;
	if (!hi || sp >= hi || hi - sp > STACK_SPAN_LIMIT)
		return -1;
	/* The tracer's own frames, by their frame pointers. */
	while (is_own(fp[1])) {
		uintptr_t up = fp[0];
		if (up <= (uintptr_t)fp || up >= hi - 16 || (up & 7))
			return -1;
		fp = (const uintptr_t *)up;
	}
	uintptr_t ip = fp[1], rbp = fp[0];
	sp = (uintptr_t)(fp + 2);
	int n = 0;
	while (n < max && ip) {
		frames[n++] = ip;
		struct cfa_rule r = cfi_rule_at(ip - 1);
		if (r.base == CFA_END)
			break;
		if (r.base == CFA_UNKNOWN)
			return ip >= loader_lo && ip < loader_hi ? n : -1;
		uintptr_t cfa = (r.base == CFA_RSP ? sp : rbp) +
				(uintptr_t)r.offset;
		if (cfa <= sp || cfa > hi || (cfa & 7))
			return -1;
		if (r.rbp_saved) {
			uintptr_t at = cfa + (uintptr_t)(intptr_t)r.rbp_offset;
			if (at < sp || (at & 7))
				return -1;
			rbp = *(const uintptr_t *)at;
		}
		ip = ((const uintptr_t *)cfa)[-1];
		sp = cfa;
	}
	return n;
}

struct backtrace_call {
	void **ptrs;
	int max;
};

/* On the walk stack: libunwind's walk, or glibc's. */
static int take_backtrace(void *arg)
{
	struct backtrace_call *c = arg;
	return unw_bt ? unw_bt(c->ptrs, c->max) : backtrace(c->ptrs, c->max);
}

/* The stack the walker cannot take, by libunwind (or glibc's backtrace)
 * on this thread's walk stack, into buf. Not inlined into unwind_capture,
 * whose frame the walker's samples would otherwise carry too. */
static __attribute__((noinline)) int take_by_unwinder(uintptr_t *buf, int max)
{
	/* The walk fills the buffer with pointers; they are read back as
	 * integers, in place, through memcpy. */
	void **ptrs = (void **)buf;
	struct backtrace_call call = {ptrs, max + UNWIND_OWN_FRAMES};
	if (!atomic_load_explicit(&loaded, memory_order_acquire))
		return UNWIND_NOT_YET; /* it would dlopen inside malloc */
	void *stack = framebuf_stack();
	if (!stack || !forkguard_enter())
		return -1;
	int n = altstack_call(stack, take_backtrace, &call);
	forkguard_leave();
	int skip = 0, out = 0;
	for (int i = 0; i < n && out < max; i++) {
		uintptr_t pc;
		memcpy(&pc, &ptrs[i], sizeof(pc));
		if (i == skip && (is_own(pc) || is_entry(pc))) {
			skip++;
			continue;
		}
		buf[out++] = pc;
	}
	return out;
}

int unwind_capture(const uintptr_t **frames, int max)
{
	uintptr_t *buf = framebuf_get();
	if (!buf)
		return -1;
	*frames = buf;
	if (walker_on) {
		/* Room for the entry frames dropped after the walk. */
		int extra = atomic_load_explicit(&n_entry, memory_order_relaxed)
				? 4 : 0;
		int n = walk(buf, max + extra);
		if (n >= 0) {
			n = drop_entries(buf, n);
			return n < max ? n : max;
		}
		atomic_fetch_add_explicit(&handed_over, 1,
					  memory_order_relaxed);
	}
	return take_by_unwinder(buf, max);
}

/* Code unmapped by dlclose must not be walked by the rules read from it
 * when something else is mapped in its place. */
HT_EXPORT int dlclose(void *handle)
{
	if (!ht_real.dlclose)
		real_resolve();
	if (!ht_real.dlclose)
		return -1;
	int rc = ht_real.dlclose(handle);
	if (walker_on)
		cfi_forget();
	return rc;
}

uint64_t unwind_handed_over(void)
{
	return atomic_load_explicit(&handed_over, memory_order_relaxed);
}

const char *unwind_name(void)
{
	return name;
}
