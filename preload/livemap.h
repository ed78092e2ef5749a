/* The live map: sampled pointer -> {stack, size, time}, lock-free.
 *
 * Nearly every free() is of an unsampled pointer, so the map keeps a filter
 * beside it: one byte counter per hash of the pointer, counting the live
 * samples that hash there. free() reads that one byte and, when it is zero,
 * goes straight to the real allocator without touching the table.
 *
 * The table is a row of levels that double in size, each opened when the
 * one before is full, so a program with few live samples touches a few
 * pages of it instead of one page per sample spread over the whole
 * capacity: on a VM a first touch costs a page fault that may reach the
 * host, far more than the sample itself. */
#ifndef HEAPTRACE_LIVEMAP_H
#define HEAPTRACE_LIVEMAP_H

#include <stdatomic.h>
#include <stdint.h>

#define LIVE_FILTER_BITS 16
#define LIVE_PROBE_WINDOW 32
#define LIVE_LEVEL_MIN 1024 /* slots in the smallest level */
#define LIVE_LEVELS_MAX 32
#ifndef LIVE_SMALL_LEVEL /* tests/core builds with smaller, to test both */
#define LIVE_SMALL_LEVEL 8192 /* levels up to this many slots: livemap.c */
#endif

/* Key values that are never pointers (the allocator aligns to >= 8). */
#define LIVE_EMPTY ((uintptr_t)0)
#define LIVE_BUSY ((uintptr_t)1)
#define LIVE_TOMB ((uintptr_t)2)

/* Fields are relaxed atomics only so that a dump may read an entry while
 * its slot is being reused; on x86-64 they compile to plain moves. */
struct live_entry {
	_Atomic uintptr_t key;
	_Atomic uint64_t size;  /* bytes the program asked for */
	_Atomic uint32_t stack; /* stacktab_id() of the allocating stack */
	_Atomic uint32_t time;  /* tracer_now_ticks() at allocation */
};

/* A copy of one entry, as handed out by remove and foreach. */
struct live_sample {
	uintptr_t ptr;
	uint64_t size;
	uint32_t stack;
	uint32_t time;
};

struct live_level {
	uint64_t base; /* index of its first slot in slots[] */
	uint64_t mask; /* its size - 1 */
};

struct livemap {
	/* First, so that free() finds it at the struct's own address. */
	_Alignas(64) _Atomic uint8_t filter[1u << LIVE_FILTER_BITS];
	struct live_entry *slots;
	uint64_t capacity; /* slots in all levels */
	unsigned nlevels;
	struct live_level level[LIVE_LEVELS_MAX];
	/* Levels ever inserted into: a remove looks no further. It only
	 * grows, so it is written a few times in the life of the process. */
	_Atomic unsigned levels_used;
	_Atomic uint64_t dropped; /* inserts that found no free slot */
	/* One bit per page of slots ever written: a dump skips the pages
	 * that never held an entry instead of reading (and so faulting in)
	 * the whole sparse table. */
	_Atomic uint64_t *touched;
};

extern struct livemap ht_live;

/* A filter byte covers 256 bytes of address space, and neighbouring bytes
 * cover neighbouring addresses (within each 16 MiB, whose number is folded
 * in by xor, so that regions far apart fall on different bytes). An
 * allocator hands out and takes back memory near what it just used, so the
 * frees of a program read a few lines of the filter again and again and
 * find them in L1, where a hash spreading them over all 64 KiB would miss
 * L1 on most frees. The price, a free of a block within 256 bytes of a
 * live sample taking the slow path, is paid for a tiny share of the heap. */
static inline unsigned live_filter_index(const void *p)
{
	uintptr_t a = (uintptr_t)p; /* (a >> 8) ^ (a >> 24), in fewer steps */
	return (unsigned)((a ^ (a >> 16)) >> 8) &
	       ((1u << LIVE_FILTER_BITS) - 1);
}

/* False: p is certainly not in the map. True: it may be. */
static inline int livemap_maybe(struct livemap *m, const void *p)
{
	return atomic_load_explicit(&m->filter[live_filter_index(p)],
				    memory_order_relaxed) != 0;
}

/* capacity is rounded up to a power of two and split into levels of
 * LIVE_LEVEL_MIN, LIVE_LEVEL_MIN, 2 LIVE_LEVEL_MIN, ... capacity/2 slots;
 * 0 on success. */
int livemap_init(struct livemap *m, uint64_t capacity);

/* Starts loading the slot where p would be inserted: a caller with other
 * work to do before livemap_insert() takes the cache miss meanwhile. */
void livemap_prefetch(struct livemap *m, const void *p);

/* 1 if remembered, 0 if every level's window was full (counted in
 * dropped). */
int livemap_insert(struct livemap *m, const void *p, uint64_t size,
		   uint32_t stack, uint32_t time);

/* 1 and the entry's fields in *out if p was live; it is removed. */
int livemap_remove(struct livemap *m, const void *p, struct live_sample *out);

/* Makes livemap_maybe() true for p for good: for pointers free() must
 * look at although they are not samples (the bootstrap buffer). */
void livemap_pin(struct livemap *m, const void *p);

/* Calls fn for each live entry, read without stopping writers: an entry
 * changing under the reader is skipped. */
void livemap_foreach(struct livemap *m,
		     void (*fn)(const struct live_sample *s, void *arg),
		     void *arg);

#endif
