/* Writes one dump file (docs/format.md). */
#ifndef HEAPTRACE_DUMP_H
#define HEAPTRACE_DUMP_H

#include <stddef.h>
#include <stdint.h>

/* Writes heaptrace.<pid>.<seq>.heap (.heap.gz with HEAPTRACE_COMPRESS)
 * in the directory dumpdir.h chooses, whole or not at all (a temporary
 * name, then rename). Returns 0 and the final path in path, or an errno
 * value with nothing left behind. Under the dump lock. */
int dump_write(const char *trigger, unsigned seq, char *path, size_t size);

/* The seq of the peak dump (triggers.h): heaptrace.<pid>.peak.heap,
 * outside the numbered series, replaced by each newer peak. */
#define DUMP_SEQ_PEAK 0u

/* Not a dump: the series' pattern, heaptrace.<pid>.NNNN.heap, for saying
 * where dumps go. */
#define DUMP_SEQ_ANY 0xffffffffu

/* The file name of this process's dump seq, without its directory. */
void dump_file_name(int pid, unsigned seq, char *name, size_t size);

#endif
