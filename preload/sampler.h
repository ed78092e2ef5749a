/* Byte-weighted Poisson sampling, on the per-thread state of
 * thread_state.h.
 *
 * Each thread counts down the bytes left until its next sample. An
 * allocation of n bytes is sampled when n >= countdown, which happens with
 * probability 1 - exp(-n/rate); it then stands for 1/p allocations. The
 * only work an unsampled allocation does is one compare and one subtract on
 * initial-exec TLS. */
#ifndef HEAPTRACE_SAMPLER_H
#define HEAPTRACE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thread_state.h"

enum sample_verdict {
	SAMPLE_NO,   /* call the real allocator, record nothing */
	SAMPLE_YES,  /* call the real allocator, then record the block */
	SAMPLE_BOOT, /* the real allocator is not known yet: bootstrap */
};

/* The slow half of sample_check: seeding, redrawing, the guard. */
enum sample_verdict sampler_slow(struct ht_thread *t, size_t n);

/* The common path: true when n bytes are not sampled (nearly always). */
static inline int sample_skip(size_t n)
{
	struct ht_thread *t = &ht_thread;
	if (__builtin_expect(n < t->countdown, 1)) {
		t->countdown -= n;
		return 1;
	}
	return 0;
}

static inline enum sample_verdict sample_check(size_t n)
{
	return sample_skip(n) ? SAMPLE_NO : sampler_slow(&ht_thread, n);
}

/* Called first thing in a thread started through pthread_create: its
 * creation order (1, 2, ...; the main thread is 0) picks its random stream. */
void sampler_thread_start(uint64_t order);

/* A new countdown for the calling thread from its random stream (another
 * counter than the malloc countdown may use it: mmaps.c). */
uint64_t sampler_draw(void);

/* The allocations (and their bytes) the tracer could not trace: made
 * before it started, or sampled before it could take their stacks. */
void sampler_untraced(uint64_t *allocs, uint64_t *bytes);

/* A sample of n bytes whose stack could not be taken yet (unwind.h's
 * UNWIND_NOT_YET): counted untraced, by its weight. */
void sampler_untraced_sample(uint64_t n);

/* Brings the tracing core up from inside the first allocation call that
 * can (the environment is set): defined by lifecycle.c, which owns the
 * start-up, and declared here so that the sampler calls it without
 * depending on it. With the calling thread's guard down; returns
 * tracer_state() afterwards. */
int lifecycle_start_early(void);

/* Objects one sample of n bytes stands for (1/p); 1 at rate 1. */
double sampler_weight(uint64_t n);

/* Stop sampling on this thread for good (the tracer has failed). */
#define SAMPLER_NEVER UINT64_MAX

#endif
