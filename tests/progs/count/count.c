/* A counting interposer, the known truth of tests/test_untraced.py:
 * preloaded after heaptrace (LD_PRELOAD="libheaptrace.so libcount.so"),
 * it sees every allocation call heaptrace forwards, keeps the set of
 * blocks live, and writes how many there are to $COUNT_OUT when the
 * library is finalised (right after heaptrace's exit dump).
 *
 * Allocations made inside heaptrace (its guard raised: the link maps of
 * its dlopen of libunwind, its threads' stacks) are its own and not the
 * program's: heaptrace_inside(), found by a weak reference that the
 * loader binds, says so, and they are not counted. The next allocator
 * is glibc's, called by its __libc_ names: no dlsym, whose own
 * allocations would have to be served before it is known.
 *
 * One spin lock guards the set: enough for a compiler's few threads; a
 * signal handler that allocates would deadlock here (none in the test). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void __libc_free(void *);
void *__libc_memalign(size_t, size_t);
void *__libc_valloc(size_t);
void *__libc_pvalloc(size_t);

int heaptrace_inside(void) __attribute__((weak));

/* Open addressing with linear probing; deletion shifts the run back, so
 * no tombstones pile up over millions of frees. */
#define SLOTS_BITS 23
#define SLOTS (1UL << SLOTS_BITS)

static uintptr_t *slots;
static size_t live;
static int overflow;
static atomic_flag lock = ATOMIC_FLAG_INIT;

static size_t home(uintptr_t p)
{
	return (size_t)((p * 0x9e3779b97f4a7c15ULL) >> (64 - SLOTS_BITS));
}

static int table(void)
{
	if (!slots) {
		void *m = mmap(NULL, SLOTS * sizeof(*slots), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED)
			return -1;
		slots = m;
	}
	return 0;
}

static void insert(uintptr_t p)
{
	if (table() || live >= SLOTS / 2) {
		overflow = 1;
		return;
	}
	size_t i = home(p);
	while (slots[i] && slots[i] != p)
		i = (i + 1) & (SLOTS - 1);
	if (!slots[i])
		live++;
	slots[i] = p;
}

static void erase(uintptr_t p)
{
	if (!slots)
		return;
	size_t i = home(p);
	while (slots[i] != p) {
		if (!slots[i])
			return; /* not one of the counted blocks */
		i = (i + 1) & (SLOTS - 1);
	}
	live--;
	/* Move back every later entry of the run that may sit in the hole. */
	size_t hole = i;
	for (size_t j = (i + 1) & (SLOTS - 1); slots[j]; j = (j + 1) & (SLOTS - 1)) {
		size_t h = home(slots[j]);
		if (((j - h) & (SLOTS - 1)) >= ((j - hole) & (SLOTS - 1))) {
			slots[hole] = slots[j];
			hole = j;
		}
	}
	slots[hole] = 0;
}

static int counted(void)
{
	return !(heaptrace_inside && heaptrace_inside());
}

static void take(void)
{
	while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
		;
}

static void drop(void)
{
	atomic_flag_clear_explicit(&lock, memory_order_release);
}

static void *added(void *p)
{
	if (p && counted()) {
		take();
		insert((uintptr_t)p);
		drop();
	}
	return p;
}

static void removed(void *p)
{
	if (p) {
		take();
		erase((uintptr_t)p);
		drop();
	}
}

EXPORT void *malloc(size_t n)
{
	return added(__libc_malloc(n));
}

EXPORT void *calloc(size_t count, size_t n)
{
	return added(__libc_calloc(count, n));
}

EXPORT void free(void *p)
{
	removed(p);
	__libc_free(p);
}

EXPORT void *realloc(void *old, size_t n)
{
	void *p = __libc_realloc(old, n);
	if (p || n == 0)
		removed(old);
	return added(p);
}

EXPORT void *memalign(size_t align, size_t n)
{
	return added(__libc_memalign(align, n));
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
	return added(__libc_memalign(align, n));
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	if (!align || (align & (align - 1)) || align % sizeof(void *))
		return EINVAL;
	void *p = __libc_memalign(align, n);
	if (!p)
		return ENOMEM;
	*out = added(p);
	return 0;
}

EXPORT void *valloc(size_t n)
{
	return added(__libc_valloc(n));
}

EXPORT void *pvalloc(size_t n)
{
	return added(__libc_pvalloc(n));
}

__attribute__((destructor)) static void count_report(void)
{
	const char *path = getenv("COUNT_OUT");
	if (!path)
		return;
	char line[64];
	int len = snprintf(line, sizeof(line), overflow ? "overflow\n" : "live %zu\n",
			   live);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (write(fd, line, (size_t)len) != len)
			abort();
		close(fd);
	}
}
