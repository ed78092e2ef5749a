/* The fork guard's child reset (preload/forkguard.c), made deterministic:
 * a thread raises its count as a stack walk does and stays there, and the
 * main thread forks without the prefork hook, as a fork does that catches
 * a thread between raising its count and backing out. In the child, after
 * the child hook, the guard's prefork must find no walk in progress and
 * return at once: the walk's thread does not exist there, and a count it
 * left would make every fork of the child wait out the guard's 2-second
 * bound. Prints "child prefork waited N ms" and exits 0 when N < 500. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../preload/forkguard.h"

static atomic_int inside, stop;

static void *walker(void *arg)
{
	(void)arg;
	if (!forkguard_enter())
		return NULL;
	atomic_store(&inside, 1);
	while (!atomic_load(&stop))
		usleep(1000);
	forkguard_leave();
	return NULL;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

int main(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, walker, NULL))
		return 1;
	while (!atomic_load(&inside))
		usleep(1000);
	pid_t pid = fork();
	if (pid == 0) {
		forkguard_postfork_child();
		double start = now_ms();
		forkguard_prefork();
		double waited = now_ms() - start;
		forkguard_postfork_parent();
		printf("child prefork waited %.0f ms\n", waited);
		fflush(stdout);
		_exit(waited < 500 ? 0 : 1);
	}
	int status = 1;
	if (pid > 0)
		waitpid(pid, &status, 0);
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
