/* The stack table: every distinct sampled call stack, once, with its
 * counters. Insert-only and lock-free: open addressing keyed by a 64-bit
 * hash of the frames; records live in an append-only arena and are never
 * moved or freed, so a pointer to one stays valid for the process's life.
 *
 * The table grows, as the live map does, by levels that double in size, up
 * to a cap (HEAPTRACE_STACKS): a program with a hundred stacks touches a
 * few pages, one with a million finds room. The index levels, the records'
 * arena and the list of records in insertion order are each mapped in
 * pieces as they fill, so neither memory nor address space is taken for
 * the cap up front. */
#ifndef HEAPTRACE_STACKTAB_H
#define HEAPTRACE_STACKTAB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stripe.h"

/* The counters of a stack are striped (stripe.h): threads that allocate
 * through the same stack, as a pool of workers running the same code does,
 * would otherwise all write one cache line on every sample. */
#define STACK_STRIPES 4

#ifndef STACK_LEVEL_MIN /* tests/core builds with smaller, to grow often */
#define STACK_LEVEL_MIN 1024 /* slots in the first index level */
#endif
#define STACK_LEVELS_MAX 32
#define STACK_CHUNKS 40

/* Only allocations are counted here: what is still in use is the sum over
 * the live map, read by the dump, so that a free of a sample touches the
 * live map alone and not the record of the stack that allocated it. */
struct stack_counts {
	/* Sampled allocations, an exact count. */
	_Alignas(CACHE_LINE) _Atomic uint64_t samples;
	/* Weighted estimates (sums of 1/p and size/p), doubles kept as bits
	 * so that they can be added to atomically. */
	_Atomic uint64_t objs;
	_Atomic uint64_t bytes;
};

/* A stack's counters added up over the stripes. */
struct stack_totals {
	uint64_t samples;
	double objs, bytes;
};

struct stack_rec {
	struct stack_counts stripe[STACK_STRIPES];
	/* Read on every sample by the lookup: on lines of their own, which
	 * no counter update invalidates. */
	uint64_t hash;
	uint32_t nframes;
	uint32_t id;         /* stacktab_id() */
	_Atomic uint32_t lost; /* lost a race while the table grew: unused */
	uint32_t dump_index; /* scratch for the dump writer (one at a time) */
	uintptr_t frames[];
};

struct stack_slot {
	_Atomic uint64_t hash;              /* 0 = empty */
	_Atomic(struct stack_rec *) rec;    /* NULL while being published */
};

/* Memory mapped in pieces of doubling size as it is first needed: with
 * 2^shift bytes in piece 0, offsets [2^shift (2^k - 1), 2^shift (2^(k+1) - 1))
 * lie in piece k. */
struct stack_chunks {
	_Atomic(char *) base[STACK_CHUNKS];
	unsigned shift;
};

struct stacktab {
	/* Read on every sample, written a few times in the process's life. */
	/* Index level k has STACK_LEVEL_MIN << k slots; the last one open
	 * takes the inserts, and the next opens when it is 3/4 full. */
	_Atomic(struct stack_slot *) level[STACK_LEVELS_MAX];
	_Atomic unsigned nlevels;
	unsigned max_levels;
	_Atomic int grow_failed; /* no memory for a level: stop trying */
	uint64_t limit;          /* most records (HEAPTRACE_STACKS) */
	struct stack_chunks arena; /* the records, by byte offset */
	/* Ids in insertion order, so that a dump reads only what exists
	 * instead of every slot of the index; 0 = not yet stored. */
	struct stack_chunks order;
	/* Written by inserts: on lines of their own. */
	_Alignas(CACHE_LINE) _Atomic uint64_t level_used[STACK_LEVELS_MAX];
	_Alignas(CACHE_LINE) _Atomic size_t arena_used;
	_Atomic uint64_t order_len;
	_Atomic uint64_t count;        /* records carved */
	_Atomic uint64_t lost;         /* of which lost a race: not listed */
	_Atomic uint64_t dropped_full; /* at the cap, or no memory */
	_Atomic uint64_t dropped_busy; /* a racing insert did not publish */
};

extern struct stacktab ht_stacks;

/* Room for up to capacity stacks; the first level is mapped now. 0 on
 * success. */
int stacktab_init(struct stacktab *t, uint64_t capacity);

/* The record for these frames, inserted if new; NULL if dropped. Only
 * after stacktab_init() succeeded. */
struct stack_rec *stacktab_intern(struct stacktab *t, const uintptr_t *frames,
				  uint32_t n);

/* Calls fn for each record inserted so far, in insertion order. */
void stacktab_foreach(struct stacktab *t,
		      void (*fn)(struct stack_rec *r, void *arg), void *arg);

/* A compact id for a record (its arena offset in cache lines), and back. */
static inline uint32_t stacktab_id(const struct stacktab *t,
				   const struct stack_rec *r)
{
	(void)t;
	return r->id;
}

static inline unsigned stack_chunk_of(const struct stack_chunks *c, size_t off)
{
	return 63u - (unsigned)__builtin_clzll((off >> c->shift) + 1);
}

static inline size_t stack_chunk_start(const struct stack_chunks *c,
				       unsigned k)
{
	return (((size_t)1 << k) - 1) << c->shift;
}

/* For an id that stacktab_id() gave. */
static inline struct stack_rec *stacktab_rec(const struct stacktab *t,
					     uint32_t id)
{
	size_t off = (size_t)id * CACHE_LINE;
	unsigned k = stack_chunk_of(&t->arena, off);
	char *base = atomic_load_explicit(&t->arena.base[k],
					  memory_order_acquire);
	return (struct stack_rec *)(base + off -
				    stack_chunk_start(&t->arena, k));
}

/* The same for an id read without synchronisation (a torn read may give
 * any value): NULL unless it falls where a record may have been carved. */
struct stack_rec *stacktab_rec_checked(const struct stacktab *t, uint32_t id);

/* Adds one sampled allocation's weight to the record's sums. */
void stack_count(struct stack_rec *r, double objs, double bytes);

/* Reads a record's counters, summed over the stripes. */
void stack_read(const struct stack_rec *r, struct stack_totals *out);

#endif
