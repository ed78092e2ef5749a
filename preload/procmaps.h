/* The executable mappings of this process, from /proc/self/maps: what a
 * profile's mappings are, and where symbolz looks up an address. */
#ifndef HEAPTRACE_PROCMAPS_H
#define HEAPTRACE_PROCMAPS_H

#include <stddef.h>
#include <stdint.h>

struct mapping {
	uintptr_t start, end;
	uint64_t offset; /* in the file */
	uint64_t dev, inode;
	const char *path; /* NUL-terminated; "" for anonymous memory; a
			     deleted file's path without " (deleted)" */
	int deleted;
};

/* The mappings, sorted by address, and the text they point into. Kept in
 * the tracer's memory by one user at a time, reused from read to read. */
struct procmaps {
	struct mapping *m;
	size_t n, cap;
	char *text;
	size_t text_cap;
};

/* Reads the executable mappings into pm. 0 or an errno value. */
int procmaps_read(struct procmaps *pm);

/* The mapping holding addr, or NULL. */
const struct mapping *procmaps_find(const struct procmaps *pm, uintptr_t addr);

#endif
