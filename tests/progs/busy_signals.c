/* Threads allocate continuously until the parent says stop (stdin closes),
 * so that dump signals arrive while the tables are changing. argv: threads.
 * Prints "ready" once the threads run. Between allocations each thread, and
 * the main thread while it waits (a process's signals mostly go to it),
 * sets errno and reads it back after a short spin: only a signal handler
 * can change it there, and a dump signal's must not; if one did, the
 * program says so and exits 3. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int stop, clobbered;

/* errno as set, a spin later: only a signal handler can have changed it
 * (volatile, or the compiler would know it cannot). */
static void errno_kept(int mark)
{
	volatile int *e = &errno;
	*e = mark;
	for (volatile int spin = 0; spin < 200; spin++)
		;
	if (*e != mark)
		atomic_fetch_add(&clobbered, 1);
}

void *busy_worker(void *arg)
{
	void *keep[256] = {0};
	unsigned i = (unsigned)(size_t)arg;
	while (!atomic_load(&stop)) {
		unsigned slot = (i = i * 1103515245u + 12345u) >> 24;
		free(keep[slot]);
		keep[slot] = malloc(64 + (i >> 16) % 4096);
		errno_kept((int)(i % 1000) + 1);
	}
	for (int k = 0; k < 256; k++)
		free(keep[k]);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4;
	pthread_t t[16];
	for (int i = 0; i < n && i < 16; i++)
		pthread_create(&t[i], NULL, busy_worker, (void *)(size_t)(i + 1));
	puts("ready");
	fflush(stdout);
	char buf[64];
	for (int mark = 1;; mark = mark % 1000 + 1) {
		struct pollfd in = {.fd = 0, .events = POLLIN};
		if (poll(&in, 1, 0) > 0 && read(0, buf, sizeof(buf)) <= 0)
			break;
		errno_kept(mark);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < n && i < 16; i++)
		pthread_join(t[i], NULL);
	if (atomic_load(&clobbered)) {
		fprintf(stderr, "busy_signals: errno changed under %d allocating loops\n",
			atomic_load(&clobbered));
		return 3;
	}
	return 0;
}
