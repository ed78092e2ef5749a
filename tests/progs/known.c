/* A program with a known allocation pattern: each function below allocates
 * an exact number of objects and bytes and keeps or frees them, so that a
 * rate-1 dump can be checked against the numbers in tests/test_preload.py.
 * Built with -fno-inline so that every site is its own function. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink[64];

/* 10 x 1024 bytes, kept. */
void keep_blocks(void)
{
	for (int i = 0; i < 10; i++)
		sink[i] = malloc(1024);
}

/* 100 x 512 bytes, all freed. */
void churn_blocks(void)
{
	for (int i = 0; i < 100; i++) {
		sink[40] = malloc(512);
		memset(sink[40], 1, 512);
		free(sink[40]);
	}
}

/* 5 x calloc(20, 50) = 1000 bytes each, kept. */
void use_calloc(void)
{
	for (int i = 0; i < 5; i++)
		sink[10 + i] = calloc(20, 50);
}

/* 4 x 256 bytes aligned to 64, kept. */
void use_posix_memalign(void)
{
	for (int i = 0; i < 4; i++) {
		void *p;
		if (posix_memalign(&p, 64, 256) == 0)
			sink[15 + i] = p;
	}
}

/* malloc(16) grown by realloc to 32, 64, 128, 256: five allocations of
 * 496 bytes in all, one block of 256 bytes in use at the end. */
void realloc_chain(void)
{
	char *p = malloc(16);
	for (size_t n = 32; n <= 256; n *= 2)
		p = realloc(p, n);
	sink[19] = p;
}

/* aligned_alloc 3 x 4096, memalign 2 x 100, valloc 1 x 300, pvalloc
 * 1 x 5000, reallocarray(NULL, 7, 11) 1 x 77: 8 objects, 17865 bytes. */
void use_other_api(void)
{
	for (int i = 0; i < 3; i++)
		sink[20 + i] = aligned_alloc(4096, 4096);
	for (int i = 0; i < 2; i++)
		sink[23 + i] = memalign(32, 100);
	sink[25] = valloc(300);
	sink[26] = pvalloc(5000);
	sink[27] = reallocarray(NULL, 7, 11);
}

/* 3 x 2000 bytes allocated here and freed by another function. */
void alloc_for_other(void)
{
	for (int i = 0; i < 3; i++)
		sink[30 + i] = malloc(2000);
}

void free_for_other(void)
{
	for (int i = 0; i < 3; i++)
		free(sink[30 + i]);
}

int main(void)
{
	keep_blocks();
	churn_blocks();
	use_calloc();
	use_posix_memalign();
	realloc_chain();
	use_other_api();
	alloc_for_other();
	free_for_other();
	return 0;
}
