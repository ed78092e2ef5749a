/* N threads allocate and free blocks of the same sizes from one site for a
 * fixed number of operations each: at the end nothing from that site is in
 * use. argv: threads, operations per thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static long ops;

void *churn_worker(void *arg)
{
	void *window[16] = {0};
	unsigned seed = (unsigned)(size_t)arg;
	for (long i = 0; i < ops; i++) {
		unsigned slot = (seed = seed * 1103515245u + 12345u) >> 28;
		free(window[slot]);
		window[slot] = malloc(16 + (size_t)(i % 16) * 16);
	}
	for (int i = 0; i < 16; i++)
		free(window[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 8;
	ops = argc > 2 ? atol(argv[2]) : 100000;
	pthread_t t[64];
	for (int i = 0; i < n && i < 64; i++)
		pthread_create(&t[i], NULL, churn_worker, (void *)(size_t)(i + 1));
	for (int i = 0; i < n && i < 64; i++)
		pthread_join(t[i], NULL);
	puts("done");
	return 0;
}
