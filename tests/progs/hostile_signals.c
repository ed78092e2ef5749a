/* Signal handlers that allocate, under heaptrace at rate 1
 * (tests/test_hostile.py). The handler runs on the main thread while two
 * other threads (with the signal blocked) allocate without pause:
 *   1. raise(SIGUSR2) 1000 times: the handler keeps one 40-byte block per
 *      run (signal_keep), so a dump must show exactly 1000 x 40 B there,
 *      unwound through the signal frame;
 *   2. a 0.5 ms interval timer for 0.3 s while the main thread computes
 *      (never inside malloc, which a handler must not interrupt even
 *      without heaptrace): the handler allocates and frees.
 * Prints "kept 1000" and "timer ok" when the timer handler ran at least
 * once; exits 0. alarm() ends a hung run. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define KEEP 1000

static void *kept[KEEP];
static volatile sig_atomic_t nkept, timer_runs;
static atomic_int stop;

void signal_keep(void)
{
	kept[nkept] = malloc(40);
	memset(kept[nkept], 1, 40);
	nkept++;
}

void signal_churn(void)
{
	char *p = malloc(64 + (size_t)timer_runs % 512);
	p[0] = 1;
	free(p);
}

static void on_usr2(int sig)
{
	(void)sig;
	signal_keep();
}

static void on_alarm(int sig)
{
	(void)sig;
	signal_churn();
	timer_runs++;
}

static void *worker(void *arg)
{
	void *ring[32] = {0};
	unsigned x = (unsigned)(size_t)arg;
	while (!atomic_load(&stop)) {
		x = x * 1103515245u + 12345u;
		free(ring[x >> 27]);
		ring[x >> 27] = malloc(8 + (x >> 8) % 1000);
	}
	for (int i = 0; i < 32; i++)
		free(ring[i]);
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time for the virtual timer to count; global so it is not optimised out. */
static volatile unsigned long spin;

int main(void)
{
	alarm(60);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGVTALRM, &sa, NULL);

	/* The workers never take the signals. */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGVTALRM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, worker, (void *)(size_t)(i + 1));
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	for (int i = 0; i < KEEP; i++)
		raise(SIGUSR2);
	printf("kept %d\n", (int)nkept);

	struct itimerval it = {{0, 500}, {0, 500}};
	setitimer(ITIMER_VIRTUAL, &it, NULL);
	for (double end = now() + 0.3; now() < end || timer_runs == 0;)
		for (int k = 0; k < 10000; k++)
			spin += (unsigned long)k;
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_VIRTUAL, &off, NULL);
	printf("timer %s\n", timer_runs > 0 ? "ok" : "never ran");

	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	return 0;
}
