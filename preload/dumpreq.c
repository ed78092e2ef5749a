/* A semaphore rather than a pipe or an eventfd: daemons that close every
 * descriptor at start-up cannot take it away, and a reused descriptor
 * number can never receive our bytes. sem_post and an atomic store are
 * async-signal-safe. The flag is raised before the post, so a waiter that
 * wakes finds it. */
#include "dumpreq.h"

#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>

static sem_t wake;
static _Atomic int pending[DUMPREQ_KINDS];

void dumpreq_init(void)
{
	for (int i = 0; i < DUMPREQ_KINDS; i++)
		atomic_store(&pending[i], 0);
	sem_init(&wake, 0, 0);
}

void dumpreq_post(enum dumpreq why)
{
	atomic_store(&pending[why], 1);
	sem_post(&wake);
}

int dumpreq_take(enum dumpreq why)
{
	return atomic_exchange(&pending[why], 0);
}

int dumpreq_pending(enum dumpreq why)
{
	return atomic_load(&pending[why]);
}

void dumpreq_wait(uint64_t deadline_ms)
{
	if (!deadline_ms) {
		sem_wait(&wake);
	} else {
		struct timespec ts = {(time_t)(deadline_ms / 1000),
				      (long)(deadline_ms % 1000) * 1000000};
		sem_clockwait(&wake, CLOCK_MONOTONIC, &ts);
	}
	/* Several signals while one dump runs make one more dump. */
	while (sem_trywait(&wake) == 0)
		;
}
