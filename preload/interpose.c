/* The interposed allocation API. Each function does the least possible on
 * the common path: one TLS compare-and-subtract for allocations (see
 * sampler.h) and one byte of the live map's filter for frees (livemap.h);
 * everything else is out of line. Sizes recorded are the sizes the program
 * asked for, not the allocator's rounded sizes. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "livemap.h"
#include "real.h"
#include "sampler.h"
#include "tracer.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

static inline void *after_alloc(enum sample_verdict v, void *p, size_t n)
{
	if (unlikely(v == SAMPLE_YES))
		tracer_record_alloc(p, n);
	return p;
}

/* The hot functions keep their slow halves out of line, so that the
 * common path needs no stack frame: test, subtract, tail call. */
__attribute__((noinline)) static void *malloc_slow(size_t n)
{
	enum sample_verdict v = sampler_slow(&ht_thread, n);
	if (unlikely(v == SAMPLE_BOOT))
		return bootstrap_alloc(n, 16);
	return after_alloc(v, ht_real.malloc(n), n);
}

HT_EXPORT void *malloc(size_t n)
{
	if (sample_skip(n))
		return ht_real.malloc(n);
	return malloc_slow(n);
}

__attribute__((noinline)) static void free_slow(void *p)
{
	if (!tracer_record_free(p))
		ht_real.free(p);
}

HT_EXPORT void free(void *p)
{
	if (unlikely(!p))
		return;
	if (unlikely(livemap_maybe(&ht_live, p))) {
		free_slow(p);
		return;
	}
	ht_real.free(p);
}

__attribute__((noinline)) static void *calloc_slow(size_t count, size_t size,
						   size_t n)
{
	enum sample_verdict v = sampler_slow(&ht_thread, n);
	if (unlikely(v == SAMPLE_BOOT)) /* zeroed: the buffer is never reused */
		return n == SIZE_MAX ? NULL : bootstrap_alloc(n, 16);
	return after_alloc(v, ht_real.calloc(count, size), n);
}

HT_EXPORT void *calloc(size_t count, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(count, size, &n))
		n = SIZE_MAX; /* the real calloc fails it with ENOMEM */
	if (sample_skip(n))
		return ht_real.calloc(count, size);
	return calloc_slow(count, size, n);
}

/* realloc of a block that may be a sample, or a new block that is one. */
__attribute__((noinline)) static void *
realloc_slow(void *old, size_t n, int old_maybe, enum sample_verdict v)
{
	if (old && bootstrap_owns(old)) {
		/* Move it out of the bootstrap buffer. */
		void *p = malloc(n);
		size_t keep = bootstrap_size(old);
		if (p)
			memcpy(p, old, keep < n ? keep : n);
		return p;
	}
	if (v == SAMPLE_BOOT)
		return bootstrap_alloc(n, 16);
	struct live_sample was;
	int had = old_maybe && tracer_take(old, &was);
	void *p = ht_real.realloc(old, n);
	if (had && !p && !(old && n == 0))
		tracer_reattach(old, &was); /* failed: old still stands */
	return after_alloc(v, p, n);
}

HT_EXPORT void *realloc(void *old, size_t n)
{
	int old_maybe = old && livemap_maybe(&ht_live, old);
	if (likely(!old_maybe) && sample_skip(n))
		return ht_real.realloc(old, n);
	enum sample_verdict v = old_maybe ? sample_check(n)
					  : sampler_slow(&ht_thread, n);
	return realloc_slow(old, n, old_maybe, v);
}

HT_EXPORT void *reallocarray(void *old, size_t count, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(count, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(old, n);
}

HT_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	enum sample_verdict v = sample_check(n);
	if (unlikely(v == SAMPLE_BOOT)) {
		*out = bootstrap_alloc(n, align);
		return *out ? 0 : ENOMEM;
	}
	int err = ht_real.posix_memalign(out, align, n);
	if (err == 0)
		after_alloc(v, *out, n);
	return err;
}

HT_EXPORT void *aligned_alloc(size_t align, size_t n)
{
	enum sample_verdict v = sample_check(n);
	if (unlikely(v == SAMPLE_BOOT))
		return bootstrap_alloc(n, align);
	return after_alloc(v, ht_real.aligned_alloc(align, n), n);
}

HT_EXPORT void *memalign(size_t align, size_t n)
{
	enum sample_verdict v = sample_check(n);
	if (unlikely(v == SAMPLE_BOOT))
		return bootstrap_alloc(n, align);
	return after_alloc(v, ht_real.memalign(align, n), n);
}

HT_EXPORT void *valloc(size_t n)
{
	enum sample_verdict v = sample_check(n);
	if (unlikely(v == SAMPLE_BOOT))
		return bootstrap_alloc(n, 4096);
	return after_alloc(v, ht_real.valloc(n), n);
}

HT_EXPORT void *pvalloc(size_t n)
{
	enum sample_verdict v = sample_check(n);
	if (unlikely(v == SAMPLE_BOOT))
		return bootstrap_alloc(n, 4096);
	return after_alloc(v, ht_real.pvalloc(n), n);
}

HT_EXPORT size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	if (bootstrap_owns(p))
		return bootstrap_size(p);
	if (!ht_real.malloc_usable_size)
		real_resolve();
	return ht_real.malloc_usable_size ? ht_real.malloc_usable_size(p) : 0;
}
