/* glibc does not reset the loader's dl_iterate_phdr lock in a forked
 * child: if another thread is inside dl_iterate_phdr when a thread forks,
 * the child inherits the lock held and its first stack unwind hangs for
 * good. heaptrace unwinds (libunwind walks the objects) on every sample,
 * which would make that likely, so its own walks stand aside for fork: the
 * prepare handler raises a flag and waits for the walks in progress to end,
 * and walks that start meanwhile are skipped (the sample is dropped).
 *
 * Ordering: a walker increments `inside` then reads `forking`; the forker
 * sets `forking` then reads `inside`. Both sequentially consistent, so at
 * least one of them sees the other (the Dekker pattern). A thread that
 * forks from a signal handler while it was itself in a walk does not wait
 * for itself, and the wait is bounded, so fork never hangs on heaptrace. */
#include "forkguard.h"

#include <sched.h>
#include <stdatomic.h>
#include <time.h>

static _Atomic int forking;
static _Atomic long inside;
static _Thread_local int walking;

int forkguard_enter(void)
{
	atomic_fetch_add(&inside, 1);
	if (atomic_load(&forking)) {
		atomic_fetch_sub(&inside, 1);
		return 0;
	}
	walking = 1;
	return 1;
}

void forkguard_leave(void)
{
	walking = 0;
	atomic_fetch_sub(&inside, 1);
}

void forkguard_prepare(void)
{
	struct timespec start, now;
	atomic_store(&forking, 1);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (atomic_load(&inside) > walking) {
		sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= 2)
			break; /* a walk stuck behind the program's own: go on */
	}
}

void forkguard_done(void)
{
	atomic_store(&forking, 0);
}
