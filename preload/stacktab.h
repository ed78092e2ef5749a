/* The stack table: every distinct sampled call stack, once, with its
 * counters. Insert-only and lock-free: open addressing keyed by a 64-bit
 * hash of the frames; records live in an append-only arena and are never
 * moved or freed, so a pointer to one stays valid for the process's life. */
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
	uint32_t dump_index; /* scratch for the dump writer (one at a time) */
	uintptr_t frames[];
};

struct stack_slot {
	_Atomic uint64_t hash;              /* 0 = empty */
	_Atomic(struct stack_rec *) rec;    /* NULL while being published */
};

struct stacktab {
	struct stack_slot *slots;
	uint64_t mask;
	uint64_t limit;          /* most records: 3/4 of the slots */
	char *arena;
	size_t arena_size;
	_Atomic size_t arena_used;
	/* Ids in insertion order, so that a dump reads only what exists
	 * instead of every slot of a sparse table; 0 = not yet stored. */
	_Atomic uint32_t *order;
	_Atomic uint64_t order_len;
	_Atomic uint64_t count;
	_Atomic uint64_t dropped_full; /* table or arena full */
	_Atomic uint64_t dropped_busy; /* a racing insert did not publish */
};

extern struct stacktab ht_stacks;

/* Room for capacity stacks of up to max_frames frames. 0 on success. */
int stacktab_init(struct stacktab *t, uint64_t capacity, unsigned max_frames);

/* The record for these frames, inserted if new; NULL if dropped. */
struct stack_rec *stacktab_intern(struct stacktab *t, const uintptr_t *frames,
				  uint32_t n);

/* Calls fn for each record inserted so far, in insertion order. */
void stacktab_foreach(struct stacktab *t,
		      void (*fn)(struct stack_rec *r, void *arg), void *arg);

/* A compact id for a record (its arena offset in cache lines), and back. */
static inline uint32_t stacktab_id(const struct stacktab *t,
				   const struct stack_rec *r)
{
	return (uint32_t)(((const char *)r - t->arena) / CACHE_LINE);
}

static inline struct stack_rec *stacktab_rec(const struct stacktab *t,
					     uint32_t id)
{
	return (struct stack_rec *)(t->arena + (size_t)id * CACHE_LINE);
}

/* Adds one sampled allocation's weight to the record's sums. */
void stack_count(struct stack_rec *r, double objs, double bytes);

/* Reads a record's counters, summed over the stripes. */
void stack_read(const struct stack_rec *r, struct stack_totals *out);

#endif
