/* Anonymous mappings the program makes outside the allocator, by call
 * stack: mmap, munmap, mremap and madvise are interposed, sampled by bytes
 * as malloc is, and the sampled mappings kept in a table of their own. */
#ifndef HEAPTRACE_MMAPS_H
#define HEAPTRACE_MMAPS_H

#include <stdint.h>

struct outbuf;

/* Writes the `# mmap:` lines of a dump (docs/format.md): the estimated
 * mappings and bytes each stack has mapped now, and `# mmap_total:`. */
void mmaps_put(struct outbuf *o);

#endif
