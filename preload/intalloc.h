/* A small allocator for the tracer's own off-hot-path structures (the
 * thread registry and its uthash tables), on mmap, never the traced
 * malloc. Callers serialise: it is not thread-safe by itself. */
#ifndef HEAPTRACE_INTALLOC_H
#define HEAPTRACE_INTALLOC_H

#include <stddef.h>

void *int_alloc(size_t size); /* zeroed; NULL on failure */
void int_free(void *p, size_t size);

#endif
