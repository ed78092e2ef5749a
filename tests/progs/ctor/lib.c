/* A library whose constructor allocates: linked into its program, it is
 * initialised before the preloaded heaptrace (the loader runs the
 * constructors of later objects first), so heaptrace cannot trace these
 * blocks and counts them instead. CTOR_BLOCKS blocks of 1000 bytes, kept. */
#include <stdlib.h>

static void *blocks[64];

__attribute__((constructor)) static void ctor_lib_start(void)
{
	const char *text = getenv("CTOR_BLOCKS");
	int n = text ? atoi(text) : 0;
	for (int i = 0; i < n && i < 64; i++)
		blocks[i] = malloc(1000);
}

void *ctor_lib_block(int i)
{
	return blocks[i];
}
