/* Small reads of this process's /proc files, without stdio. */
#ifndef HEAPTRACE_PROCFS_H
#define HEAPTRACE_PROCFS_H

#include <stddef.h>
#include <stdint.h>

/* Reads a small /proc file into buf (NUL-terminated); its length, 0 when
 * it cannot be read. */
size_t proc_read(const char *path, char *buf, size_t size);

/* Writes a /proc file, whole, to o. */
struct outbuf;
void proc_copy(struct outbuf *o, const char *path);

/* The resident set size, from /proc/self/statm. */
uint64_t proc_rss_bytes(void);

#endif
