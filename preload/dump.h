/* Writes one dump file (docs/format.md). */
#ifndef HEAPTRACE_DUMP_H
#define HEAPTRACE_DUMP_H

#include <stddef.h>
#include <stdint.h>

/* Writes <dir>/heaptrace.<pid>.<seq>.heap whole or not at all (temporary
 * name, then rename). Returns 0, or an errno value with nothing left
 * behind. The final path is stored in path. */
int dump_write(const char *trigger, unsigned seq, char *path, size_t size);

#endif
