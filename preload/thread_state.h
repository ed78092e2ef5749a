/* The per-thread state every part of the tracer reads: the sampler's
 * countdown and random state, the guard that keeps the tracer's own
 * allocations untraced, the flag of a thread looking up the real allocator,
 * the bounds of the thread's stack and its buffer for captured stacks. It sits in initial-exec TLS so that
 * the hot path reaches it with one segment-relative load, and has a header
 * of its own so that any module can use it without depending on the
 * sampler. */
#ifndef HEAPTRACE_THREAD_STATE_H
#define HEAPTRACE_THREAD_STATE_H

#include <stdint.h>

struct ht_thread {
	uint64_t countdown; /* bytes before the next sample; 0 = slow path */
	uint64_t rng;       /* xorshift64* state; 0 = not yet seeded */
	int guard;          /* inside the tracer: allocations are untraced */
	int resolving;      /* looking up the real allocator (bootstrap) */
	uintptr_t stack_hi; /* above every frame of this thread; 0 = unknown */
	uintptr_t *frames;  /* its capture buffer (framebuf.h); NULL = none yet */
};

extern __thread struct ht_thread ht_thread;

/* Raises the guard and returns its previous value, for guard_restore():
 * a signal handler that allocates while the tracer runs, or tracer code
 * entered from inside the tracer, leaves the guard as it found it. */
static inline int guard_enter(void)
{
	int was = ht_thread.guard;
	ht_thread.guard = 1;
	return was;
}

static inline void guard_restore(int was)
{
	ht_thread.guard = was;
}

#endif
