/* Forks while three threads allocate without pause (tests/test_fork.py):
 * `fork_stall N` forks N children one after another; each child forks
 * once more (a grandchild that exits at once) and measures how long that
 * fork took. A fork of the parent can catch a thread in the middle of the
 * tracer's work; whatever state that leaves must not slow the child's own
 * forks. Prints "forks N slow S max_ms M", S being the children whose fork
 * took over 100 ms, and exits 0. alarm() ends a hung run. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;

static void *churn(void *arg)
{
	unsigned x = (unsigned)(uintptr_t)arg;
	while (!atomic_load(&stop)) {
		x = x * 1103515245u + 12345u;
		free(malloc(16 + (x >> 20) % 512));
	}
	return NULL;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* In the child: the time its own fork takes, in microseconds. */
static uint64_t timed_fork(void)
{
	uint64_t start = now_us();
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	uint64_t took = now_us() - start;
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return took;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100, slow = 0;
	uint64_t max_us = 0;
	int fds[2];
	pthread_t t[3];
	alarm(300);
	if (pipe(fds))
		return 1;
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			uint64_t took = timed_fork();
			_exit(write(fds[1], &took, sizeof(took)) == sizeof(took) ? 0 : 1);
		}
		uint64_t took;
		int status;
		if (waitpid(pid, &status, 0) != pid || status != 0 ||
		    read(fds[0], &took, sizeof(took)) != sizeof(took))
			return 1;
		slow += took > 100000;
		if (took > max_us)
			max_us = took;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	printf("forks %d slow %d max_ms %.1f\n", n, slow, (double)max_us / 1000);
	return 0;
}
