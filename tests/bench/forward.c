/* libforward.so: the floor of the benchmark.
 *
 * An LD_PRELOAD interposer that does nothing but forward the allocation API
 * to the next definition (RTLD_NEXT). Whatever any interposer costs, this one
 * costs too: the extra call, the PLT hop, the indirect jump. heaptrace at its
 * default rate is measured against it, so the figure left is what tracing
 * itself adds.
 *
 * The one problem every interposer has is bootstrap: dlsym() may allocate
 * before the real functions are known. Those few requests are served from a
 * small static buffer, which free() and realloc() recognise.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PUBLIC __attribute__((visibility("default")))

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);
static size_t (*real_malloc_usable_size)(void *);

static _Alignas(64) unsigned char boot_buf[8192];
static size_t boot_used;
static int resolving;

static int in_boot(const void *p)
{
	return (const unsigned char *)p >= boot_buf &&
	       (const unsigned char *)p < boot_buf + sizeof boot_buf;
}

static void *boot_alloc(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (n > sizeof boot_buf - boot_used)
		return NULL;
	void *p = boot_buf + boot_used;
	boot_used += n;
	return p; /* static storage: already zero, so calloc is served too */
}

#define LOOKUP(name) (*(void **)&real_##name = dlsym(RTLD_NEXT, #name))

static void resolve(void)
{
	resolving = 1;
	LOOKUP(free);
	LOOKUP(calloc);
	LOOKUP(realloc);
	LOOKUP(posix_memalign);
	LOOKUP(aligned_alloc);
	LOOKUP(memalign);
	LOOKUP(valloc);
	LOOKUP(pvalloc);
	LOOKUP(malloc_usable_size);
	LOOKUP(malloc); /* last: it is the "resolved" flag the others test */
	resolving = 0;
}

__attribute__((constructor)) static void forward_init(void)
{
	if (!real_malloc)
		resolve();
}

/* Resolve on first use; while resolving, answer from the boot buffer. */
#define ENSURE(bootexpr)                                  \
	do {                                              \
		if (__builtin_expect(!real_malloc, 0)) {  \
			if (resolving)                    \
				return bootexpr;          \
			resolve();                        \
		}                                         \
	} while (0)

PUBLIC void *malloc(size_t n)
{
	ENSURE(boot_alloc(n));
	return real_malloc(n);
}

PUBLIC void free(void *p)
{
	if (__builtin_expect(in_boot(p), 0))
		return;
	if (__builtin_expect(!real_malloc, 0)) {
		if (resolving)
			return;
		resolve();
	}
	real_free(p);
}

PUBLIC void *calloc(size_t n, size_t m)
{
	ENSURE(m && n > SIZE_MAX / m ? NULL : boot_alloc(n * m));
	return real_calloc(n, m);
}

PUBLIC void *realloc(void *p, size_t n)
{
	if (__builtin_expect(in_boot(p), 0)) {
		void *q = malloc(n);
		size_t room = (size_t)(boot_buf + sizeof boot_buf - (unsigned char *)p);
		if (q)
			memcpy(q, p, n < room ? n : room);
		return q;
	}
	ENSURE(boot_alloc(n));
	return real_realloc(p, n);
}

PUBLIC int posix_memalign(void **out, size_t align, size_t n)
{
	ENSURE(12 /* ENOMEM */);
	return real_posix_memalign(out, align, n);
}

PUBLIC void *aligned_alloc(size_t align, size_t n)
{
	ENSURE(NULL);
	return real_aligned_alloc(align, n);
}

PUBLIC void *memalign(size_t align, size_t n)
{
	ENSURE(NULL);
	return real_memalign(align, n);
}

PUBLIC void *valloc(size_t n)
{
	ENSURE(NULL);
	return real_valloc(n);
}

PUBLIC void *pvalloc(size_t n)
{
	ENSURE(NULL);
	return real_pvalloc(n);
}

PUBLIC size_t malloc_usable_size(void *p)
{
	if (__builtin_expect(in_boot(p), 0))
		return 0;
	ENSURE(0);
	return real_malloc_usable_size(p);
}
