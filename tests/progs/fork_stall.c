/* Forks from three threads that allocate between forks (tests/test_fork.py):
 * `fork_stall N` makes N children in all, each thread forking in turn while
 * the others allocate, so a fork can catch a thread in the middle of the
 * tracer's work, or another fork. Each child forks once more (a grandchild
 * that exits at once) and times that fork; a child whose fork took over
 * 100 ms tries twice more, so that a moment of a busy machine is not taken
 * for a stall, which slows every fork of the child alike. Prints "forks N
 * stalled S" (children whose three forks all took over 100 ms) and exits
 * 0. alarm() ends a hung run. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOW_US 100000

static atomic_int left, forked, stalled;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* In a child: 1 if its fork took over SLOW_US three times running. */
static int fork_stalls(void)
{
	for (int try = 0; try < 3; try++) {
		uint64_t start = now_us();
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		uint64_t took = now_us() - start;
		if (pid > 0)
			waitpid(pid, NULL, 0);
		if (took <= SLOW_US)
			return 0;
	}
	return 1;
}

static void *worker(void *arg)
{
	unsigned x = (unsigned)(uintptr_t)arg;
	while (atomic_fetch_sub(&left, 1) > 0) {
		for (int i = 0; i < 200; i++) {
			x = x * 1103515245u + 12345u;
			free(malloc(16 + (x >> 20) % 512));
		}
		pid_t pid = fork();
		if (pid == 0)
			_exit(fork_stalls() ? 3 : 0);
		int status;
		if (pid < 0 || waitpid(pid, &status, 0) != pid ||
		    !WIFEXITED(status))
			exit(1);
		atomic_fetch_add(&forked, 1);
		if (WEXITSTATUS(status) == 3)
			atomic_fetch_add(&stalled, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[3];
	atomic_store(&left, argc > 1 ? atoi(argv[1]) : 100);
	alarm(300);
	for (int i = 0; i < 3; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1)))
			return 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	printf("forks %d stalled %d\n", atomic_load(&forked), atomic_load(&stalled));
	return 0;
}
