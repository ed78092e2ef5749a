/* Finds the real allocation functions with dlsym(RTLD_NEXT). dlsym itself
 * may call malloc or calloc before any of them is known, so those calls are
 * answered from a small static buffer that free() later recognises and
 * ignores. */
#include "real.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "livemap.h"
#include "log.h"
#include "thread_state.h"

struct ht_real ht_real;

#define BOOTSTRAP_SIZE (64 * 1024)
#define BOOT_HEADER 16

static _Alignas(4096) char bootstrap[BOOTSTRAP_SIZE];
static _Atomic size_t bootstrap_used;

void *bootstrap_alloc(size_t size, size_t align)
{
	if (align < BOOT_HEADER)
		align = BOOT_HEADER;
	if (size > BOOTSTRAP_SIZE || align > 4096)
		return NULL;
	size_t need = size + align + BOOT_HEADER;
	size_t start = atomic_fetch_add(&bootstrap_used, need);
	if (start + need > BOOTSTRAP_SIZE) {
		ht_log("the bootstrap buffer is exhausted (%zu bytes asked for "
		       "before the allocator was found)", size);
		return NULL;
	}
	uintptr_t p = (uintptr_t)bootstrap + start + BOOT_HEADER;
	p = (p + align - 1) & ~(uintptr_t)(align - 1);
	memcpy((void *)(p - sizeof(size_t)), &size, sizeof(size_t));
	/* free() must look before handing this to the real allocator. */
	livemap_pin(&ht_live, (void *)p);
	return (void *)p;
}

int bootstrap_owns(const void *p)
{
	return (const char *)p >= bootstrap &&
	       (const char *)p < bootstrap + BOOTSTRAP_SIZE;
}

size_t bootstrap_size(const void *p)
{
	size_t size;
	memcpy(&size, (const char *)p - sizeof(size_t), sizeof(size_t));
	return size;
}

#define LOOKUP_AS(field, symbol)                                         \
	do {                                                             \
		void *f = dlsym(RTLD_NEXT, symbol);                      \
		memcpy(&r.field, &f, sizeof(f));                         \
	} while (0)
#define LOOKUP(name) LOOKUP_AS(name, #name)

/* operator new and new[] (w, a), delete and delete[] (l, a), each form. */
#define LOOKUP_NEW(field, c)                                             \
	do {                                                             \
		LOOKUP_AS(field.plain, "_Zn" c "m");                     \
		LOOKUP_AS(field.nothrow, "_Zn" c "mRKSt9nothrow_t");     \
		LOOKUP_AS(field.aligned, "_Zn" c "mSt11align_val_t");    \
		LOOKUP_AS(field.aligned_nothrow,                         \
			  "_Zn" c "mSt11align_val_tRKSt9nothrow_t");     \
	} while (0)
#define LOOKUP_DELETE(field, c)                                          \
	do {                                                             \
		LOOKUP_AS(field.plain, "_Zd" c "Pv");                    \
		LOOKUP_AS(field.sized, "_Zd" c "Pvm");                   \
		LOOKUP_AS(field.aligned, "_Zd" c "PvSt11align_val_t");   \
		LOOKUP_AS(field.sized_aligned,                           \
			  "_Zd" c "PvmSt11align_val_t");                 \
		LOOKUP_AS(field.nothrow, "_Zd" c "PvRKSt9nothrow_t");    \
		LOOKUP_AS(field.aligned_nothrow,                         \
			  "_Zd" c "PvSt11align_val_tRKSt9nothrow_t");    \
	} while (0)

void real_resolve(void)
{
	struct ht_thread *t = &ht_thread;
	if (t->resolving)
		return;
	t->resolving = 1;
	struct ht_real r;
	memset(&r, 0, sizeof(r));
	LOOKUP(free);
	LOOKUP(calloc);
	LOOKUP(realloc);
	LOOKUP(reallocarray);
	LOOKUP(posix_memalign);
	LOOKUP(aligned_alloc);
	LOOKUP(memalign);
	LOOKUP(valloc);
	LOOKUP(pvalloc);
	LOOKUP(malloc_usable_size);
	LOOKUP(pthread_create);
	LOOKUP(pthread_join);
	LOOKUP(pthread_detach);
	LOOKUP(sigaction);
	LOOKUP(signal);
	LOOKUP(dlclose);
	LOOKUP(mmap);
	LOOKUP(munmap);
	LOOKUP(mremap);
	LOOKUP(madvise);
	LOOKUP_NEW(op_new, "w");
	LOOKUP_NEW(op_new_array, "a");
	LOOKUP_DELETE(op_delete, "l");
	LOOKUP_DELETE(op_delete_array, "a");
	LOOKUP(malloc);
	if (!r.malloc || !r.free || !r.calloc || !r.realloc) {
		t->resolving = 0;
		return;
	}
	/* malloc last: a non-NULL ht_real.malloc means all is filled in. */
	void *(*m)(size_t) = r.malloc;
	r.malloc = NULL;
	ht_real = r;
	__atomic_store_n(&ht_real.malloc, m, __ATOMIC_RELEASE);
	t->resolving = 0;
}
