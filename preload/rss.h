/* What a dump records to explain RSS (`heaptrace rss`): the process's
 * /proc/self/smaps_rollup, each mapping's resident and anonymous bytes
 * from /proc/self/smaps, and the allocator's own statistics. */
#ifndef HEAPTRACE_RSS_H
#define HEAPTRACE_RSS_H

struct outbuf;

/* Writes the `# smaps_rollup:`, `# smaps:` and `# allocator:` lines
 * (docs/format.md). On the dumper's thread or a dump's caller: it reads
 * files with a buffer on the stack and allocates nothing. */
void rss_put(struct outbuf *o);

#endif
