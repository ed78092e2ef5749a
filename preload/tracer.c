/* Brings the tables and the frame walker up (lifecycle.c calls it from
 * the first allocation call, or from the constructor when none came
 * first: nothing here may dlopen), and records samples. */
#include "tracer.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "livemap.h"
#include "real.h"
#include "sampler.h"
#include "stacktab.h"
#include "tracer_state.h"
#include "triggers.h"
#include "unwind.h"

/* __libc_stack_end points at argc; argv and the environment lie above
 * it, so these bytes over it are mapped whatever the program. */
#define MAIN_STACK_SLACK 256
extern void *__libc_stack_end;

static uint64_t start_mono_ns;
static uint64_t start_unix_ns;

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint32_t tracer_now_ticks(void)
{
	return (uint32_t)((clock_ns(CLOCK_MONOTONIC_COARSE) - start_mono_ns) /
			  (1000000000ULL / TRACER_TICKS_PER_S));
}

uint64_t tracer_start_unix_ns(void)
{
	return start_unix_ns;
}

static void start_clock(void)
{
	start_mono_ns = clock_ns(CLOCK_MONOTONIC_COARSE);
	start_unix_ns = clock_ns(CLOCK_REALTIME);
}

void tracer_postfork_child(void)
{
	start_clock();
}

int tracer_init(void)
{
	start_clock();
	if (!ht_real.malloc) {
		tracer_fail("cannot find the real malloc with dlsym(RTLD_NEXT)");
	} else if (stacktab_init(&ht_stacks, ht_config.stack_capacity) ||
		   livemap_init(&ht_live, ht_config.live_capacity)) {
		tracer_fail("cannot map memory for the tables");
	} else {
		if (getpid() == gettid()) /* the stack that __libc_stack_end tops */
			unwind_thread_start((uintptr_t)__libc_stack_end +
					    MAIN_STACK_SLACK);
		unwind_init();
		return 0;
	}
	return -1;
}

/* The bytes one sample of n stands for, as the heap estimate counts it:
 * the same on its free, so that the estimate returns to where it was. */
static int64_t sample_bytes(uint64_t n)
{
	return (int64_t)(sampler_weight(n) * (double)n);
}

/* Once per process, when the stack table first refuses a new stack: the
 * dumps count what is lost, this says which variable makes room. */
static void say_table_full(void)
{
	static _Atomic int said;
	if (atomic_load_explicit(&ht_stacks.dropped_full, memory_order_relaxed) &&
	    !atomic_exchange(&said, 1))
		ht_log("the stack table is full (%llu stacks); samples of new "
		       "stacks are dropped and counted in # dropped_stack_table: "
		       "raise HEAPTRACE_STACKS to keep them",
		       (unsigned long long)ht_stacks.limit);
}

void tracer_record_alloc(void *p, size_t n)
{
	if (!p)
		return;
	int saved = errno, was = guard_enter();
	livemap_prefetch(&ht_live, p); /* arrives while we unwind */
	const uintptr_t *frames;
	int nf = unwind_capture(&frames, (int)ht_config.max_frames);
	struct stack_rec *r = NULL;
	if (nf == UNWIND_NOT_YET) /* before the constructor loaded libunwind */
		sampler_untraced_sample(n);
	else if (nf < 0) /* a fork is starting: no stack can be taken now */
		atomic_fetch_add(&ht_stacks.dropped_busy, 1);
	else
		r = stacktab_intern(&ht_stacks, frames, (uint32_t)nf);
	if (r) {
		double w = sampler_weight(n);
		/* Counted before it is live, so that a dump never finds more
		 * of a stack in use than allocated (the key's release store
		 * publishes the count too). A sample the full map drops is
		 * still counted allocated, and is simply never in use. */
		stack_count(r, w, w * (double)n);
		int live = livemap_insert(&ht_live, p, n,
					  stacktab_id(&ht_stacks, r),
					  tracer_now_ticks());
		triggers_sampled(sample_bytes(n), live);
	} else if (nf >= 0) {
		say_table_full();
	}
	guard_restore(was);
	errno = saved;
}

void tracer_reattach(void *p, const struct live_sample *s)
{
	if (livemap_insert(&ht_live, p, s->size, s->stack, s->time))
		triggers_sampled(sample_bytes(s->size), 1);
}

int tracer_take(void *p, struct live_sample *s)
{
	if (!livemap_remove(&ht_live, p, s))
		return 0;
	triggers_freed(sample_bytes(s->size));
	return 1;
}

int tracer_record_free(void *p)
{
	struct live_sample s;
	if (bootstrap_owns(p))
		return 1;
	tracer_take(p, &s);
	return 0;
}
