/* Power-of-two size classes from 16 bytes to 64 KiB, each with a free list,
 * carved from 256 KiB chunks; larger requests get their own mapping. The
 * caller passes the size back on free (uthash does), so blocks carry no
 * header. */
#include "intalloc.h"

#include <string.h>

#include "arena.h"

#define MIN_SHIFT 4
#define MAX_SHIFT 16
#define CHUNK (256 * 1024)

static void *free_lists[MAX_SHIFT + 1];
static char *chunk;
static size_t chunk_left;

static int size_class(size_t size)
{
	int shift = MIN_SHIFT;
	while (((size_t)1 << shift) < size)
		shift++;
	return shift;
}

void *int_alloc(size_t size)
{
	int shift = size_class(size);
	if (shift > MAX_SHIFT)
		return arena_map(size);
	size_t block = (size_t)1 << shift;
	void *p = free_lists[shift];
	if (p) {
		memcpy(&free_lists[shift], p, sizeof(void *));
		memset(p, 0, block);
		return p;
	}
	if (chunk_left < block) {
		chunk = arena_map(CHUNK);
		if (!chunk)
			return NULL;
		chunk_left = CHUNK;
	}
	p = chunk;
	chunk += block;
	chunk_left -= block;
	return p;
}

void int_free(void *p, size_t size)
{
	if (!p)
		return;
	int shift = size_class(size);
	if (shift > MAX_SHIFT) {
		arena_unmap(p, size);
		return;
	}
	memcpy(p, &free_lists[shift], sizeof(void *));
	free_lists[shift] = p;
}
