/* Keeps N blocks of 32 bytes live from one site until it exits, so that at
 * rate 1 the live map must hold N entries at once. argv[1] is N. */
#include <stdio.h>
#include <stdlib.h>

void **keep_blocks(unsigned long n)
{
	void **blocks = calloc(n, sizeof(*blocks));
	for (unsigned long i = 0; blocks && i < n; i++)
		blocks[i] = malloc(32);
	return blocks;
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
	void **blocks = keep_blocks(n);
	if (!blocks)
		return 2;
	printf("%lu\n", n);
	return 0;
}
