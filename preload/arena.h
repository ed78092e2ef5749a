/* The tracer's own memory: mmap, never the traced malloc. */
#ifndef HEAPTRACE_ARENA_H
#define HEAPTRACE_ARENA_H

#include <stddef.h>
#include <stdint.h>

/* Zeroed pages, reserved lazily (MAP_NORESERVE): untouched pages cost
 * nothing. NULL on failure. */
void *arena_map(size_t size);
void arena_unmap(void *p, size_t size);

/* Bytes mapped through arena_map, and how many of them are resident. */
uint64_t arena_mapped_bytes(void);
uint64_t arena_resident_bytes(void);

#endif
