/* glibc does not reset the loader's dl_iterate_phdr lock in a forked
 * child: if another thread is inside dl_iterate_phdr when a thread forks,
 * the child inherits the lock held and its first stack unwind hangs for
 * good. heaptrace unwinds (libunwind walks the objects) on every sample,
 * which would make that likely, so its own walks stand aside for fork: the
 * prepare handler raises a flag and waits for the walks in progress to end,
 * and walks that start meanwhile are skipped (the sample is dropped).
 *
 * Ordering: a walker increments its stripe of `inside` then reads
 * `forking`; the forker sets `forking` then reads every stripe. All are
 * sequentially consistent, so at least one of them sees the other (the
 * Dekker pattern). `inside` is striped (stripe.h) because every sample
 * walks: one shared counter would be a cache line all threads write.
 * A thread that forks from a signal handler while it was itself in a walk
 * does not wait for itself, and the wait is bounded, so fork never hangs
 * on heaptrace. `walking` is raised before the thread's count and lowered
 * after it, so it is never less than what the thread counts: a handler
 * that interrupts the thread anywhere in enter or leave does not wait for
 * it (were it to, a timer firing faster than the bound would keep the
 * thread from ever getting on). In the one instruction where `walking` is
 * ahead of the count, a fork could miss one other walk.
 *
 * The child starts its counts afresh: a thread that had just raised its
 * stripe when the fork happened (it would have seen `forking` and backed
 * out) does not exist there, and a count it left would make every fork of
 * the child wait out the bound. Only the forking thread's own walk, if it
 * forked from a handler in the middle of one, is still counted (as
 * `walking` says: at worst one too many, which the bound ends). */
#include "forkguard.h"

#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "stripe.h"

#define INSIDE_STRIPES 16

static _Atomic int forking;
static struct {
	_Alignas(CACHE_LINE) _Atomic long n;
} inside[INSIDE_STRIPES];
static _Thread_local int walking;

static _Atomic long *my_stripe(void)
{
	return &inside[thread_stripe() % INSIDE_STRIPES].n;
}

static long walks_in_progress(void)
{
	long n = 0;
	for (int i = 0; i < INSIDE_STRIPES; i++)
		n += atomic_load(&inside[i].n);
	return n;
}

int forkguard_enter(void)
{
	_Atomic long *mine = my_stripe();
	walking = 1;
	atomic_signal_fence(memory_order_seq_cst);
	atomic_fetch_add(mine, 1);
	if (atomic_load(&forking)) {
		atomic_fetch_sub(mine, 1);
		atomic_signal_fence(memory_order_seq_cst);
		walking = 0;
		return 0;
	}
	return 1;
}

void forkguard_leave(void)
{
	atomic_fetch_sub(my_stripe(), 1);
	atomic_signal_fence(memory_order_seq_cst);
	walking = 0;
}

void forkguard_prefork(void)
{
	struct timespec start, now;
	atomic_store(&forking, 1);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (walks_in_progress() > walking) {
		sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= 2)
			break; /* a walk stuck behind the program's own: go on */
	}
}

void forkguard_postfork_parent(void)
{
	atomic_store(&forking, 0);
}

void forkguard_postfork_child(void)
{
	for (int i = 0; i < INSIDE_STRIPES; i++)
		atomic_store(&inside[i].n, 0);
	atomic_store(my_stripe(), walking);
	atomic_store(&forking, 0);
}
