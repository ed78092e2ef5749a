/* thread_firsts: N threads, one after another, each making one small
 * allocation from one site and exiting, so that each allocation is its
 * thread's first. At the default rate each is sampled with probability
 * 1 - exp(-64/rate), about 1 in 8000; a sampler that always sampled a new
 * thread's first allocation would sample all of them
 * (tests/test_sampling.py).
 *
 * usage: thread_firsts [N]   (default 400) */
#include <pthread.h>
#include <stdlib.h>

static void *volatile sink;

void *first_alloc(void *arg)
{
	(void)arg;
	sink = malloc(64);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 400;
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, first_alloc, NULL))
			return 1;
		pthread_join(t, NULL);
	}
	return 0;
}
