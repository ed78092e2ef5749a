/* The slow path of sampling: drawing the next countdown. The draw is
 * floor(E) + 1 with E exponential of mean rate: then "sampled iff n >=
 * countdown" has probability exactly 1 - exp(-n/rate) for whole n, and by
 * memorylessness the countdown left after an unsampled allocation is again
 * the right distribution. */
#include "sampler.h"

#include <math.h>
#include <stdatomic.h>
#include <unistd.h>

#include "config.h"
#include "real.h"
#include "tracer_state.h"

/* Allocations the tracer could not trace (made before the environment
 * is set, while another thread starts the tracer, or sampled before the
 * unwinder is loaded): counted, so that the dump can say what it did not
 * see. Relaxed: only totals are read. */
static _Atomic uint64_t untraced_allocs, untraced_bytes;

static void add_untraced(uint64_t allocs, uint64_t bytes)
{
	atomic_fetch_add_explicit(&untraced_allocs, allocs,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&untraced_bytes, bytes, memory_order_relaxed);
}

void sampler_untraced(uint64_t *allocs, uint64_t *bytes)
{
	*allocs = atomic_load_explicit(&untraced_allocs, memory_order_relaxed);
	*bytes = atomic_load_explicit(&untraced_bytes, memory_order_relaxed);
}

void sampler_untraced_sample(uint64_t n)
{
	double w = sampler_weight(n);
	add_untraced((uint64_t)llround(w), (uint64_t)llround(w * (double)n));
}

/* This thread's place in creation order (see sampler_thread_start). */
static __thread uint64_t thread_order;

void sampler_thread_start(uint64_t order)
{
	thread_order = order;
}

/* Each thread's stream is a function of the process's seed and the
 * thread's creation order only, so a run with HEAPTRACE_SEED replays its
 * samples. splitmix64's finalizer spreads neighbouring orders apart. */
static uint64_t thread_seed(void)
{
	uint64_t z = ht_config.seed + thread_order * 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z ? z : 0x2545f4914f6cdd1dULL;
}

static uint64_t next_random(struct ht_thread *t)
{
	if (!t->rng)
		t->rng = thread_seed();
	uint64_t x = t->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t->rng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t draw_countdown(struct ht_thread *t)
{
	uint64_t rate = ht_config.rate;
	if (rate == 1)
		return 0;
	/* u uniform in (0, 1]: 53 random bits, never zero. */
	double u = (double)((next_random(t) >> 11) + 1) * 0x1.0p-53;
	double e = -log(u) * (double)rate;
	return e >= 0x1.0p63 ? (uint64_t)1 << 63 : (uint64_t)e + 1;
}

enum sample_verdict sampler_slow(struct ht_thread *t, size_t n)
{
	if (__builtin_expect(!ht_real.malloc, 0)) {
		real_resolve();
		if (!ht_real.malloc)
			return SAMPLE_BOOT;
	}
	if (t->guard)
		return SAMPLE_NO;
	int state = tracer_state();
	if (state != TRACER_ON) {
		/* The first allocation once getenv works starts the tracer,
		 * and is itself sampled when it is on (the constructor, after
		 * other libraries' constructors, would be too late for them). */
		if (state == TRACER_OFF && environ)
			state = lifecycle_start_early();
		if (state == TRACER_FAILED) {
			t->countdown = SAMPLER_NEVER;
			return SAMPLE_NO;
		}
		if (state != TRACER_ON) {
			add_untraced(1, n);
			return SAMPLE_NO;
		}
	}
	if (!t->rng) {
		/* A new thread: start it at a random point of the process. */
		t->countdown = draw_countdown(t);
		if (n < t->countdown) {
			t->countdown -= n;
			return SAMPLE_NO;
		}
	}
	t->countdown = draw_countdown(t);
	return SAMPLE_YES;
}

uint64_t sampler_draw(void)
{
	return draw_countdown(&ht_thread);
}

double sampler_weight(uint64_t n)
{
	uint64_t rate = ht_config.rate;
	if (rate == 1)
		return 1.0;
	return 1.0 / -expm1(-(double)n / (double)rate);
}
