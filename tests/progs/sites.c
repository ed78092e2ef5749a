/* sites: six allocation sites that span the range of sizes, for comparing
 * sampled estimates with the truth (tests/test_sampling.py). Each site is
 * its own function with one malloc call, so it is one stack and one dump
 * line; every fourth block (every one at the 64 KiB site) is freed at once,
 * the rest stay live until exit. The blocks are never touched, so the large
 * ones cost address space, not memory. Nothing else allocates: the program
 * prints nothing (stdio would allocate a buffer), and the test knows the
 * truth from the table below, which it repeats.
 *
 * usage: sites */
#include <stdlib.h>

static void *volatile sink;

#define SITE(name, count, size, all_freed)                                    \
	__attribute__((noinline)) static void name(void)                      \
	{                                                                     \
		for (unsigned long i = 0; i < (count); i++) {                 \
			void *p = malloc(size);                               \
			sink = p;                                             \
			if ((all_freed) || i % 4 == 3)                        \
				free(p);                                      \
		}                                                             \
	}

SITE(site_16, 1000000, 16, 0)
SITE(site_4k, 10000, 4096, 0)
SITE(site_1m, 100, 1 << 20, 0)
SITE(site_64k_freed, 200, 64 << 10, 1)
SITE(site_8m, 5, 8 << 20, 0)
SITE(site_100, 100000, 100, 0)

int main(void)
{
	site_16();
	site_4k();
	site_1m();
	site_64k_freed();
	site_8m();
	site_100();
	return 0;
}
