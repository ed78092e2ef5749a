/* The allocator heaptrace sits on: the next definitions of the allocation
 * API after this library (glibc, a jemalloc linked into the program, a
 * tcmalloc preloaded after heaptrace), and the bootstrap buffer that serves
 * the allocations dlsym makes while they are being looked up. */
#ifndef HEAPTRACE_REAL_H
#define HEAPTRACE_REAL_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

/* C++'s operator new and delete after heaptrace (libstdc++, or a tcmalloc
 * preloaded after it), by their Itanium ABI names: a std::nothrow_t comes
 * by reference, a std::align_val_t as a size_t. NULL where none follows:
 * a program without a C++ runtime at start. */
struct ht_real_new {
	void *(*plain)(size_t);
	void *(*nothrow)(size_t, const void *);
	void *(*aligned)(size_t, size_t);
	void *(*aligned_nothrow)(size_t, size_t, const void *);
};

struct ht_real_delete {
	void (*plain)(void *);
	void (*sized)(void *, size_t);
	void (*aligned)(void *, size_t);
	void (*sized_aligned)(void *, size_t, size_t);
	void (*nothrow)(void *, const void *);
	void (*aligned_nothrow)(void *, size_t, const void *);
};

struct ht_real {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*reallocarray)(void *, size_t, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
	size_t (*malloc_usable_size)(void *);
	int (*pthread_create)(pthread_t *, const pthread_attr_t *,
			      void *(*)(void *), void *);
	int (*pthread_join)(pthread_t, void **);
	int (*pthread_detach)(pthread_t);
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	void (*(*signal)(int, void (*)(int)))(int);
	int (*dlclose)(void *);
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	int (*munmap)(void *, size_t);
	void *(*mremap)(void *, size_t, size_t, int, ...);
	int (*madvise)(void *, size_t, int);
	struct ht_real_new op_new, op_new_array;
	struct ht_real_delete op_delete, op_delete_array;
};

extern struct ht_real ht_real;

/* Looks every function up once; on this thread, allocations made meanwhile
 * are served from the bootstrap buffer. */
void real_resolve(void);

void *bootstrap_alloc(size_t size, size_t align);
int bootstrap_owns(const void *p);
size_t bootstrap_size(const void *p);

#endif
