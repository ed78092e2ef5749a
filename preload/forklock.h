/* A mutex that the fork hooks hold across fork (lifecycle.h), and that
 * knows whether this thread is at or inside it: a fork from a signal
 * handler that interrupted this thread there must not wait for itself
 * (it never would get the lock). The fork then goes ahead with the lock
 * as it is; the child's copy of the interrupted thread finishes what it
 * was doing and lets go, as the parent's does.
 *
 * `held` is a thread-local flag of the caller's, raised before the lock
 * is asked for and lowered after it is let go, so a handler that runs in
 * between never waits on it; the signal fences keep the compiler from
 * moving those stores across the lock calls. */
#ifndef HEAPTRACE_FORKLOCK_H
#define HEAPTRACE_FORKLOCK_H

#include <pthread.h>
#include <stdatomic.h>

struct fork_lock {
	pthread_mutex_t m;
	int prefork_took; /* the prefork hook holds m */
};

#define FORK_LOCK_INIT {PTHREAD_MUTEX_INITIALIZER, 0}

static inline void fork_lock_take(struct fork_lock *l, int *held)
{
	*held = 1;
	atomic_signal_fence(memory_order_seq_cst);
	pthread_mutex_lock(&l->m);
}

static inline void fork_lock_drop(struct fork_lock *l, int *held)
{
	pthread_mutex_unlock(&l->m);
	atomic_signal_fence(memory_order_seq_cst);
	*held = 0;
}

static inline void fork_lock_prefork(struct fork_lock *l, const int *held)
{
	if (*held) {
		l->prefork_took = 0;
		return;
	}
	pthread_mutex_lock(&l->m);
	l->prefork_took = 1;
}

/* In the parent and in the child alike. */
static inline void fork_lock_postfork(struct fork_lock *l)
{
	if (l->prefork_took)
		pthread_mutex_unlock(&l->m);
}

#endif
