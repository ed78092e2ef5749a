/* Holds a known amount of memory from one site, in blocks of mixed sizes,
 * so that sampled estimates can be compared with the truth. argv[1] is the
 * number of MiB to hold. */
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;

static const size_t sizes[] = {1000, 3000, 7000, 20000, 64000, 150};

/* Returns the bytes held. */
size_t hold_memory(size_t target)
{
	size_t held = 0;
	for (unsigned i = 0; held < target; i++) {
		size_t n = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
		sink = malloc(n);
		held += n;
	}
	return held;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
	printf("%zu\n", hold_memory(mib << 20));
	return 0;
}
