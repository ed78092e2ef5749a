/* pairs: the unsampled paths of malloc, calloc, realloc and free, for
 * counting instructions.
 *
 * tests/test_perf.py runs it under `valgrind --tool=callgrind
 * --toggle-collect=run_pairs`, so only the loop below is counted: N rounds
 * of one kind, with nothing else in between:
 *   malloc   malloc(SIZE) + free
 *   calloc   calloc(1, SIZE) + free
 *   realloc  one block realloc'd between SIZE and 2 * SIZE (one call a round)
 * Before the loop it keeps a few large blocks live, so a tracer that
 * samples them has live samples and its free() cannot take a "nothing
 * sampled yet" shortcut. Divided by N, the count is the cost of one round.
 *
 * usage: pairs N [SIZE [malloc|calloc|realloc]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { MALLOC, CALLOC, REALLOC };

__attribute__((noinline)) void run_pairs(unsigned long n, size_t size, enum kind kind);

__attribute__((noinline)) void run_pairs(unsigned long n, size_t size, enum kind kind)
{
	if (kind == REALLOC) {
		void *p = malloc(size);
		for (unsigned long i = 0; i < n; i++) {
			p = realloc(p, i & 1 ? size : 2 * size);
			__asm__ volatile("" : : "r"(p) : "memory");
		}
		free(p);
		return;
	}
	for (unsigned long i = 0; i < n; i++) {
		void *p = kind == CALLOC ? calloc(1, size) : malloc(size);
		/* keeps the compiler from pairing malloc with free away */
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 0) : 10000;
	size_t size = argc > 2 ? strtoul(argv[2], NULL, 0) : 16;
	const char *name = argc > 3 ? argv[3] : "malloc";
	enum kind kind = !strcmp(name, "calloc") ? CALLOC : !strcmp(name, "realloc") ? REALLOC : MALLOC;
	enum { KEEP = 16 };
	void *keep[KEEP];
	for (int i = 0; i < KEEP; i++) {
		keep[i] = malloc((size_t)4 << 20); /* 4 MiB: sampled at the default rate */
		if (!keep[i])
			return 2;
	}
	run_pairs(n, size, kind);
	for (int i = 0; i < KEEP; i++)
		free(keep[i]);
	printf("pairs=%lu size=%zu kind=%s\n", n, size, name);
	return 0;
}
