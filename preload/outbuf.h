/* Buffered output to a file descriptor, with the number formats a dump
 * needs, without stdio (which allocates and locks) and fast enough for
 * dumps of 100k stacks. */
#ifndef HEAPTRACE_OUTBUF_H
#define HEAPTRACE_OUTBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct outbuf {
	int fd;
	int err; /* first write error (errno), 0 if none */
	size_t len, cap;
	char *buf;
	/* When set, flushed bytes go through it (gzip) rather than straight
	 * to fd; it returns 0 or an errno value. */
	int (*filter)(int fd, const char *p, size_t n);
};

/* Writes to fd through buf (cap bytes, the caller's); no filter. */
void outbuf_start(struct outbuf *o, int fd, char *buf, size_t cap);

/* Writes all n bytes to fd (retrying short writes); 0 or an errno value. */
int out_write_all(int fd, const char *p, size_t n);

void out_flush(struct outbuf *o);
void out_bytes(struct outbuf *o, const void *p, size_t n);

/* Inline so that the length of a literal is known at compile time. */
static inline void out_str(struct outbuf *o, const char *s)
{
	out_bytes(o, s, strlen(s));
}

void out_u64(struct outbuf *o, uint64_t v);

/* A number as the next field of a line: a blank, then v. */
static inline void out_field_u64(struct outbuf *o, uint64_t v)
{
	out_str(o, " ");
	out_u64(o, v);
}

void out_hex(struct outbuf *o, uint64_t v); /* lowercase, no 0x */
void out_frames(struct outbuf *o, const uintptr_t *pc, uint32_t n); /* " 0x.." each */
void out_fixed3(struct outbuf *o, double v); /* -12.345 */
/* The counts of a legacy heap profile line, "c: b [ac: ab] @" (jeprof
 * needs the blank after each colon). */
void out_heap_counts(struct outbuf *o, uint64_t c, uint64_t b, uint64_t ac,
		     uint64_t ab);
/* A sample line's counts, as out_heap_counts, except that a pair of
 * objects with no bytes (malloc(0) blocks, which only rate 1 samples) is
 * written 0: 0. google-pprof and jeprof divide each pair's bytes by its
 * count and stop at such a pair ("Illegal division by zero"); go tool
 * pprof drops it. out_zero_byte_objects, after the line, gives the counts
 * left out. */
void out_sample_counts(struct outbuf *o, uint64_t c, uint64_t b, uint64_t ac,
		       uint64_t ab);
/* "# zero_byte_objects: <c> <ac>" and a newline, when out_sample_counts
 * left a count out (0 for a pair it kept). */
void out_zero_byte_objects(struct outbuf *o, uint64_t c, uint64_t b,
			   uint64_t ac, uint64_t ab);

#endif
