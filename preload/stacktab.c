/* Insert: claim an empty slot by CAS of its hash from 0, carve a record
 * from the arena, fill it, then publish the record pointer with release.
 * A reader that finds the hash acquires the pointer; while it is NULL the
 * inserter is between claim and publish, and the reader waits a bounded
 * number of rounds before dropping its sample (so a thread preempted or
 * killed mid-insert, or a fork child that inherited the half-done insert,
 * can never hang anyone). Equal hashes with different frames are distinct
 * stacks: the frames are compared and probing goes on. */
#include "stacktab.h"

#include <sched.h>
#include <string.h>

#include "arena.h"

struct stacktab ht_stacks;

/* A record that failed to be carved: skip it, never wait on it. */
#define REC_FAILED ((struct stack_rec *)1)
#define PUBLISH_WAIT_ROUNDS 1000

int stacktab_init(struct stacktab *t, uint64_t capacity, unsigned max_frames)
{
	uint64_t slots = 64;
	while (slots < capacity + capacity / 3)
		slots <<= 1;
	t->slots = arena_map(slots * sizeof(struct stack_slot));
	if (!t->slots)
		return -1;
	t->mask = slots - 1;
	t->limit = capacity;
	/* Room for every stack at full depth; pages are touched only as
	 * records are carved. */
	t->arena_size = capacity * (sizeof(struct stack_rec) +
				    (size_t)max_frames * sizeof(uintptr_t) +
				    CACHE_LINE);
	t->arena = arena_map(t->arena_size);
	t->order = arena_map(capacity * sizeof(uint32_t));
	if (!t->arena || !t->order) {
		arena_unmap(t->slots, slots * sizeof(struct stack_slot));
		arena_unmap(t->arena, t->arena_size);
		arena_unmap(t->order, capacity * sizeof(uint32_t));
		t->slots = NULL;
		return -1;
	}
	/* Offset 0 would make a valid id look like "no stack"; skip it. */
	atomic_store(&t->arena_used, CACHE_LINE);
	return 0;
}

static uint64_t hash_frames(const uintptr_t *frames, uint32_t n)
{
	uint64_t h = 0x84222325cbf29ce4ULL ^ n;
	for (uint32_t i = 0; i < n; i++) {
		h ^= frames[i];
		h *= 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	return h ? h : 1;
}

static struct stack_rec *carve(struct stacktab *t, const uintptr_t *frames,
			       uint32_t n, uint64_t h)
{
	if (atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed) >=
	    t->limit) {
		atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
		return NULL;
	}
	size_t size = sizeof(struct stack_rec) + n * sizeof(uintptr_t);
	size = (size + CACHE_LINE - 1) & ~(size_t)(CACHE_LINE - 1);
	size_t off = atomic_fetch_add_explicit(&t->arena_used, size,
					       memory_order_relaxed);
	if (off + size > t->arena_size) {
		atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
		return NULL;
	}
	struct stack_rec *r = (struct stack_rec *)(t->arena + off);
	r->hash = h;
	r->nframes = n;
	memcpy(r->frames, frames, n * sizeof(uintptr_t));
	return r;
}

static void append_order(struct stacktab *t, struct stack_rec *r)
{
	/* carve() admitted at most limit records, so the index fits. */
	uint64_t i = atomic_fetch_add_explicit(&t->order_len, 1,
					       memory_order_relaxed);
	atomic_store_explicit(&t->order[i], stacktab_id(t, r),
			      memory_order_release);
}

void stacktab_foreach(struct stacktab *t,
		      void (*fn)(struct stack_rec *r, void *arg), void *arg)
{
	uint64_t n = atomic_load_explicit(&t->order_len, memory_order_acquire);
	for (uint64_t i = 0; i < n && i < t->limit; i++) {
		uint32_t id = atomic_load_explicit(&t->order[i],
						   memory_order_acquire);
		if (id)
			fn(stacktab_rec(t, id), arg);
	}
}

static struct stack_rec *await_publish(struct stacktab *t,
				       struct stack_slot *s)
{
	for (int round = 0; round < PUBLISH_WAIT_ROUNDS; round++) {
		struct stack_rec *r =
		    atomic_load_explicit(&s->rec, memory_order_acquire);
		if (r)
			return r;
		if (round > 16)
			sched_yield();
	}
	atomic_fetch_add_explicit(&t->dropped_busy, 1, memory_order_relaxed);
	return NULL;
}

struct stack_rec *stacktab_intern(struct stacktab *t, const uintptr_t *frames,
				  uint32_t n)
{
	uint64_t h = hash_frames(frames, n);
	for (uint64_t i = 0, pos = h & t->mask; i <= t->mask;
	     i++, pos = (pos + 1) & t->mask) {
		struct stack_slot *s = &t->slots[pos];
		uint64_t k = atomic_load_explicit(&s->hash, memory_order_acquire);
		if (k == 0) {
			/* New stack, full table: drop it without claiming the
			 * slot, or refused stacks would fill every slot and
			 * make each later probe scan the whole table. */
			if (atomic_load_explicit(&t->count, memory_order_relaxed) >=
			    t->limit) {
				atomic_fetch_add_explicit(&t->dropped_full, 1,
							  memory_order_relaxed);
				return NULL;
			}
			if (atomic_compare_exchange_strong_explicit(
				&s->hash, &k, h, memory_order_acq_rel,
				memory_order_acquire)) {
				struct stack_rec *r = carve(t, frames, n, h);
				atomic_store_explicit(&s->rec, r ? r : REC_FAILED,
						      memory_order_release);
				if (r)
					append_order(t, r);
				else
					atomic_fetch_add_explicit(
					    &t->dropped_full, 1,
					    memory_order_relaxed);
				return r;
			}
			/* Lost the race: k now holds the winner's hash. */
		}
		if (k != h)
			continue;
		struct stack_rec *r = await_publish(t, s);
		if (!r)
			return NULL;
		if (r != REC_FAILED && r->nframes == n &&
		    memcmp(r->frames, frames, n * sizeof(uintptr_t)) == 0)
			return r;
	}
	atomic_fetch_add_explicit(&t->dropped_full, 1, memory_order_relaxed);
	return NULL;
}

static void add_double(_Atomic uint64_t *field, double d)
{
	uint64_t old = atomic_load_explicit(field, memory_order_relaxed), new;
	do {
		double v;
		memcpy(&v, &old, sizeof(v));
		v += d;
		memcpy(&new, &v, sizeof(new));
	} while (!atomic_compare_exchange_weak_explicit(
	    field, &old, new, memory_order_relaxed, memory_order_relaxed));
}

void stack_count(struct stack_rec *r, double objs, double bytes)
{
	struct stack_counts *c = &r->stripe[thread_stripe() % STACK_STRIPES];
	add_double(&c->objs, objs);
	add_double(&c->bytes, bytes);
	/* Release: a reader that sees the count sees the sums it goes with. */
	atomic_fetch_add_explicit(&c->samples, 1, memory_order_release);
}

static double read_double(const _Atomic uint64_t *field)
{
	uint64_t bits = atomic_load_explicit(field, memory_order_relaxed);
	double v;
	memcpy(&v, &bits, sizeof(v));
	return v;
}

void stack_read(const struct stack_rec *r, struct stack_totals *out)
{
	*out = (struct stack_totals){0};
	for (int i = 0; i < STACK_STRIPES; i++) {
		const struct stack_counts *c = &r->stripe[i];
		out->samples +=
		    atomic_load_explicit(&c->samples, memory_order_acquire);
		out->objs += read_double(&c->objs);
		out->bytes += read_double(&c->bytes);
	}
}
