/* pairs: the unsampled malloc+free path, for counting instructions.
 *
 * tests/test_perf.py runs it under `valgrind --tool=callgrind
 * --toggle-collect=run_pairs`, so only the loop below is counted: N pairs of
 * malloc(SIZE) + free, with nothing else in between. Before the loop it keeps
 * a few large blocks live, so a tracer that samples them has live samples and
 * its free() cannot take a "nothing sampled yet" shortcut. Divided by N, the
 * count is the cost of one unsampled malloc+free pair.
 *
 * usage: pairs N [SIZE]
 */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void run_pairs(unsigned long n, size_t size);

__attribute__((noinline)) void run_pairs(unsigned long n, size_t size)
{
	for (unsigned long i = 0; i < n; i++) {
		void *p = malloc(size);
		/* keeps the compiler from pairing malloc with free away */
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 0) : 10000;
	size_t size = argc > 2 ? strtoul(argv[2], NULL, 0) : 16;
	enum { KEEP = 16 };
	void *keep[KEEP];
	for (int i = 0; i < KEEP; i++) {
		keep[i] = malloc((size_t)4 << 20); /* 4 MiB: sampled at the default rate */
		if (!keep[i])
			return 2;
	}
	run_pairs(n, size);
	for (int i = 0; i < KEEP; i++)
		free(keep[i]);
	printf("pairs=%lu size=%zu\n", n, size);
	return 0;
}
