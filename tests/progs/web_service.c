/* A service for tests/test_http.py, the endpoint itself (http_service.c
 * is tests/test_profile.py's): holds 16 blocks of 10000 bytes, runs 3
 * threads that wait and leaves 2 that exited unjoined (all started from
 * start_threads), then leaks argv[1] bytes (default 0) from leak_tick
 * every 100 ms until SIGTERM (at most 120 s). Prints "ready" when its
 * threads are in place and "done" at the end, exit status 0: what a
 * client of the HTTP endpoint must never change. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *held[16];
static volatile sig_atomic_t stop;
static int gate[2];

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

void *waiting(void *arg)
{
	char c;
	while (read(gate[0], &c, 1) < 0)
		;
	return arg;
}

void *quick(void *arg)
{
	return arg;
}

void start_threads(pthread_t *waiters)
{
	pthread_t t;
	for (int i = 0; i < 3; i++)
		pthread_create(&waiters[i], NULL, waiting, NULL);
	for (int i = 0; i < 2; i++)
		pthread_create(&t, NULL, quick, NULL);
}

void *leak_tick(size_t n)
{
	return n ? malloc(n) : NULL;
}

int main(int argc, char **argv)
{
	size_t leak = argc > 1 ? (size_t)atol(argv[1]) : 0;
	pthread_t waiters[3];
	signal(SIGTERM, on_term);
	for (int i = 0; i < 16; i++)
		held[i] = malloc(10000);
	if (pipe(gate))
		return 1;
	start_threads(waiters);
	usleep(100000); /* the quick ones have exited */
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; i < 1200 && !stop; i++) {
		void *volatile p = leak_tick(leak);
		(void)p;
		usleep(100000);
	}
	if (write(gate[1], "xxx", 3) != 3)
		return 1;
	for (int i = 0; i < 3; i++)
		pthread_join(waiters[i], NULL);
	printf("done\n");
	return held[0] == NULL;
}
