/* The heap as the HTTP endpoint serves it (issue 12): totals, Go's delta
 * profiles, profile.proto, Go's ?debug=1 text and pprof's symbolz. All of
 * it runs on heaptrace's own server thread with its guard set: the tables
 * are read under the dump lock, which only dumps also take, and the
 * writing to the client happens after that lock is let go, so a slow
 * client holds no dump and no program thread. Memory is the tracer's own
 * (arena.c), kept from one request to the next. */
#ifndef HEAPTRACE_PROFILE_H
#define HEAPTRACE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

struct outbuf;

/* Totals of the heap now, the same estimates a dump's header gives. */
struct heap_totals {
	double inuse_objects, inuse_bytes, alloc_objects, alloc_bytes;
	uint64_t samples;      /* allocations sampled since start */
	uint64_t dropped;      /* samples dropped (tables full, busy, ...) */
	uint64_t stacks;       /* distinct stacks */
	uint64_t tracer_bytes; /* heaptrace's own memory */
};
void heap_totals_get(struct heap_totals *t);

/* The base of a delta profile (?seconds=N): every stack's allocation
 * counters at one moment, in the tracer's own memory. NULL when that
 * memory cannot be had. */
struct heap_base;
struct heap_base *heap_base_take(void);
void heap_base_release(struct heap_base *b);

enum profile_type { PROFILE_HEAP, PROFILE_ALLOCS }; /* default sample type:
	inuse_space for /heap, alloc_space for /allocs */

/* Writes profile.proto (gzip-framed) of the heap now to o: four sample
 * types (alloc_objects, alloc_space, inuse_objects, inuse_space), the
 * heap_v2 period, mappings with build ids. With base: what was allocated
 * since base (Go's delta profile). 0 or an errno value. */
int profile_write_proto(struct outbuf *o, enum profile_type type,
			const struct heap_base *base);

/* Go's ?debug=1 page: totals, then each stack with counts and frames
 * named where the process's own symbol tables can name them. */
int profile_write_text(struct outbuf *o, const struct heap_base *base);

/* pprof's symbolz (/debug/pprof/symbol). GET (body NULL): writes
 * "num_symbols: 1\n". POST: body holds addresses "0x1+0x2+..." (pprof's
 * form); writes "0x<addr>\t<name>\n" for each address it can name under
 * the rule: a name only for an address inside [value, value+size) of a
 * .symtab/.dynsym symbol of the mapped file. */
int symbolz_write(struct outbuf *o, const char *body, size_t len);

/* Fork hooks (lifecycle.h): the profile lock, outside the dump lock, is
 * held across fork, so the child never inherits a snapshot half-taken. */
/* For the endpoint's other pages (the threads page): runs fn(arg, o)
 * under the profile lock with this process's mappings read, so that fn
 * may name frames with profile_put_frame, as the ?debug=1 page does
 * ("#\t0x<pc>\t<name>+0x<off>\t", the call's address, return address
 * less one). 0 or an errno value (fn not run). */
int profile_with_names(void (*fn)(void *arg, struct outbuf *o), void *arg,
		       struct outbuf *o);
void profile_put_frame(struct outbuf *o, uintptr_t return_address);

void profile_prefork(void);
void profile_postfork_parent(void);
void profile_postfork_child(void);

#endif
