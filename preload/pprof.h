/* profile.proto (github.com/google/pprof, proto/profile.proto) of one
 * snapshot, encoded straight into an outbuf. */
#ifndef HEAPTRACE_PPROF_H
#define HEAPTRACE_PPROF_H

#include <stdint.h>

struct outbuf;
struct procmaps;
struct snapshot;

struct pprof_meta {
	const char *default_type; /* "inuse_space" or "alloc_space" */
	uint64_t time_ns;         /* CLOCK_REALTIME of the snapshot */
	uint64_t duration_ns;     /* a delta profile's span, else 0 */
};

/* Writes the profile (not gzipped: the caller frames it) of s, with the
 * mappings pm. One caller at a time (the profile lock); 0 or an errno
 * value (ENOMEM: the tracer's memory ran out; else o's error). */
int pprof_write(struct outbuf *o, const struct snapshot *s,
		const struct procmaps *pm, const struct pprof_meta *meta);

#endif
