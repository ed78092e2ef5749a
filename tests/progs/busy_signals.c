/* Threads allocate continuously until the parent says stop (stdin closes),
 * so that dump signals arrive while the tables are changing. argv: threads.
 * Prints "ready" once the threads run. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int stop;

void *busy_worker(void *arg)
{
	void *keep[256] = {0};
	unsigned i = (unsigned)(size_t)arg;
	while (!atomic_load(&stop)) {
		unsigned slot = (i = i * 1103515245u + 12345u) >> 24;
		free(keep[slot]);
		keep[slot] = malloc(64 + (i >> 16) % 4096);
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
	while (read(0, buf, sizeof(buf)) > 0)
		;
	atomic_store(&stop, 1);
	for (int i = 0; i < n && i < 16; i++)
		pthread_join(t[i], NULL);
	return 0;
}
