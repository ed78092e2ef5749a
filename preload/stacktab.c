/* Insert: claim an empty slot by CAS of its hash from 0, carve a record
 * from the arena, fill it, then publish the record pointer with release.
 * A reader that finds the hash acquires the pointer; while it is NULL the
 * inserter is between claim and publish, and the reader waits a bounded
 * number of rounds before dropping its sample (so a thread preempted or
 * killed mid-insert, or a fork child that inherited the half-done insert,
 * can never hang anyone). Equal hashes with different frames are distinct
 * stacks: the frames are compared and probing goes on.
 *
 * Growth. Only the newest index level takes inserts; a lookup probes it
 * alone, so a known stack costs one hash probe however many levels there
 * are. A stack the newest level lacks is looked for in the older ones,
 * newest first, and the highest record found is placed in the newest
 * level too (the record is not copied: a slot points at it); only a stack
 * found nowhere gets a new record. A record is returned only after a
 * re-read of the level count shows that the level it was found or placed
 * in is still the newest. That makes a stack one record even while levels
 * open: if R was returned from level a, then every placement into a later
 * level b was decided by a thread that read the count after b opened and
 * so after R was claimed, and its search of the levels below b finds R
 * (levels between a and b hold only R, by the same argument). A thread
 * that lost that race (it placed a new record in a level that stopped
 * being the newest, and another record won the newer one) marks its
 * record lost; no one was given it. The claims, the probes' loads of
 * hashes and the level count are sequentially consistent for this
 * argument; on x86-64 those loads are plain moves. */
#include "stacktab.h"

#include <sched.h>
#include <string.h>

#include "arena.h"

struct stacktab ht_stacks;

/* A record that failed to be carved: skip it, never wait on it. */
#define REC_FAILED ((struct stack_rec *)1)
#define PUBLISH_WAIT_ROUNDS 1000
#define ARENA_SHIFT 16 /* 64 KiB of records first */
#define ORDER_SHIFT 12 /* then 1,024 ids */
/* Ids are arena offsets in cache lines, in 32 bits. */
#define ARENA_MAX ((size_t)UINT32_MAX * CACHE_LINE)

static uint64_t level_size(unsigned k)
{
	return (uint64_t)STACK_LEVEL_MIN << k;
}

/* Piece k of c, mapped if it was not; NULL if it cannot be. Racing
 * mappers keep the first one published. */
static char *chunk_get(struct stack_chunks *c, unsigned k)
{
	char *p = atomic_load_explicit(&c->base[k], memory_order_acquire);
	if (p || k >= STACK_CHUNKS)
		return p;
	size_t size = (size_t)1 << (c->shift + k);
	char *mine = arena_map(size);
	if (!mine)
		return NULL;
	if (atomic_compare_exchange_strong_explicit(&c->base[k], &p, mine,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return mine;
	arena_unmap(mine, size);
	return p;
}

/* The slots of level k, mapped if it was not. */
static struct stack_slot *level_get(struct stacktab *t, unsigned k)
{
	struct stack_slot *s =
	    atomic_load_explicit(&t->level[k], memory_order_acquire);
	if (s)
		return s;
	size_t bytes = level_size(k) * sizeof(struct stack_slot);
	struct stack_slot *mine = arena_map(bytes);
	if (!mine) {
		atomic_store_explicit(&t->grow_failed, 1, memory_order_relaxed);
		return NULL;
	}
	if (atomic_compare_exchange_strong_explicit(&t->level[k], &s, mine,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return mine;
	arena_unmap(mine, bytes);
	return s;
}

int stacktab_init(struct stacktab *t, uint64_t capacity)
{
	t->limit = capacity;
	/* The last level has room for every record at half load. */
	t->max_levels = 1;
	while (t->max_levels < STACK_LEVELS_MAX &&
	       level_size(t->max_levels - 1) < 2 * capacity)
		t->max_levels++;
	t->arena.shift = ARENA_SHIFT;
	t->order.shift = ORDER_SHIFT;
	if (!level_get(t, 0))
		return -1;
	atomic_store(&t->nlevels, 1);
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

/* Room for a record of size bytes at an offset that lies in one piece of
 * the arena, mapped; NULL if the arena is full or cannot be mapped. */
static struct stack_rec *arena_take(struct stacktab *t, size_t size,
				    size_t *off_out)
{
	for (int tries = 0; tries < STACK_CHUNKS; tries++) {
		size_t off = atomic_fetch_add_explicit(&t->arena_used, size,
						       memory_order_relaxed);
		if (off + size > ARENA_MAX)
			return NULL;
		unsigned k = stack_chunk_of(&t->arena, off);
		/* A record across two pieces is skipped: the next one
		 * starts in the later piece. */
		if (k >= STACK_CHUNKS ||
		    stack_chunk_of(&t->arena, off + size - 1) != k)
			continue;
		char *base = chunk_get(&t->arena, k);
		if (!base)
			return NULL;
		*off_out = off;
		return (struct stack_rec *)(base + off -
					    stack_chunk_start(&t->arena, k));
	}
	return NULL;
}

/* Lists r in insertion order; 0 if the list cannot take it. */
static int append_order(struct stacktab *t, struct stack_rec *r)
{
	/* carve() admitted at most limit records, so the index fits. */
	uint64_t i = atomic_fetch_add_explicit(&t->order_len, 1,
					       memory_order_relaxed);
	size_t off = i * sizeof(uint32_t);
	unsigned k = stack_chunk_of(&t->order, off);
	char *base = k < STACK_CHUNKS ? chunk_get(&t->order, k) : NULL;
	if (!base)
		return 0;
	_Atomic uint32_t *slot =
	    (_Atomic uint32_t *)(base + off - stack_chunk_start(&t->order, k));
	atomic_store_explicit(slot, r->id, memory_order_release);
	return 1;
}

static struct stack_rec *carve(struct stacktab *t, const uintptr_t *frames,
			       uint32_t n, uint64_t h)
{
	if (atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed) >=
	    t->limit) {
		atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
		return NULL;
	}
	size_t size = sizeof(struct stack_rec) + n * sizeof(uintptr_t), off;
	size = (size + CACHE_LINE - 1) & ~(size_t)(CACHE_LINE - 1);
	struct stack_rec *r = arena_take(t, size, &off);
	if (!r) {
		atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
		return NULL;
	}
	r->hash = h;
	r->nframes = n;
	r->id = (uint32_t)(off / CACHE_LINE);
	memcpy(r->frames, frames, n * sizeof(uintptr_t));
	if (!append_order(t, r)) {
		/* Unlisted, a record would count samples no dump shows. */
		atomic_store_explicit(&r->lost, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->lost, 1, memory_order_relaxed);
		return NULL;
	}
	return r;
}

void stacktab_foreach(struct stacktab *t,
		      void (*fn)(struct stack_rec *r, void *arg), void *arg)
{
	uint64_t n = atomic_load_explicit(&t->order_len, memory_order_acquire);
	for (uint64_t i = 0; i < n; i++) {
		size_t off = i * sizeof(uint32_t);
		unsigned k = stack_chunk_of(&t->order, off);
		char *base = k < STACK_CHUNKS
				 ? atomic_load_explicit(&t->order.base[k],
							memory_order_acquire)
				 : NULL;
		if (!base) { /* the rest of this piece is not listed yet */
			i = stack_chunk_start(&t->order, k + 1) /
				sizeof(uint32_t) - 1;
			continue;
		}
		uint32_t id = atomic_load_explicit(
		    (_Atomic uint32_t *)(base + off -
					 stack_chunk_start(&t->order, k)),
		    memory_order_acquire);
		if (!id)
			continue;
		struct stack_rec *r = stacktab_rec(t, id);
		if (!atomic_load_explicit(&r->lost, memory_order_relaxed))
			fn(r, arg);
	}
}

struct stack_rec *stacktab_rec_checked(const struct stacktab *t, uint32_t id)
{
	size_t off = (size_t)id * CACHE_LINE;
	if (id == 0 || off + sizeof(struct stack_rec) >
			   atomic_load_explicit(&t->arena_used,
						memory_order_relaxed))
		return NULL;
	unsigned k = stack_chunk_of(&t->arena, off);
	if (k >= STACK_CHUNKS ||
	    stack_chunk_of(&t->arena, off + sizeof(struct stack_rec) - 1) != k ||
	    !atomic_load_explicit(&t->arena.base[k], memory_order_acquire))
		return NULL;
	return stacktab_rec(t, id);
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

static int same_frames(const struct stack_rec *r, const uintptr_t *frames,
		       uint32_t n)
{
	return r != REC_FAILED && r->nframes == n &&
	       memcmp(r->frames, frames, n * sizeof(uintptr_t)) == 0;
}

/* What a probe of one level found. */
enum probe { FOUND, ABSENT, BUSY, FULL };

/* Probes level k for the frames from their home slot to the first empty
 * slot: FOUND sets *rec; ABSENT sets *slot to that empty slot, where the
 * stack would go. Inlined: it is most of the cost of a sample's lookup. */
static inline __attribute__((always_inline)) enum probe probe(struct stacktab *t, unsigned k, uint64_t h,
			const uintptr_t *frames, uint32_t n,
			struct stack_rec **rec, struct stack_slot **slot)
{
	struct stack_slot *slots =
	    atomic_load_explicit(&t->level[k], memory_order_acquire);
	uint64_t mask = level_size(k) - 1;
	for (uint64_t i = 0, pos = h & mask; i <= mask;
	     i++, pos = (pos + 1) & mask) {
		struct stack_slot *s = &slots[pos];
		uint64_t key = atomic_load(&s->hash);
		if (key == 0) {
			*slot = s;
			return ABSENT;
		}
		if (key != h)
			continue;
		struct stack_rec *r = await_publish(t, s);
		if (!r)
			return BUSY;
		if (same_frames(r, frames, n)) {
			*rec = r;
			return FOUND;
		}
	}
	return FULL;
}

/* The newest level that holds the frames, below level top. */
static enum probe find_below(struct stacktab *t, unsigned top, uint64_t h,
			     const uintptr_t *frames, uint32_t n,
			     struct stack_rec **rec)
{
	struct stack_slot *ignored;
	for (unsigned k = top; k-- > 0;) {
		enum probe p = probe(t, k, h, frames, n, rec, &ignored);
		if (p == FOUND || p == BUSY)
			return p;
	}
	return ABSENT;
}

/* Opens level k when level k - 1 has had its share of claims; 1 if the
 * caller should look again, in the new level. */
static int grow(struct stacktab *t, unsigned k)
{
	if (k >= t->max_levels ||
	    atomic_load_explicit(&t->level_used[k - 1], memory_order_relaxed) <
		level_size(k - 1) / 4 * 3 ||
	    atomic_load_explicit(&t->grow_failed, memory_order_relaxed) ||
	    !level_get(t, k))
		return 0;
	/* The level is published before the count that makes it the newest. */
	unsigned expect = k;
	atomic_compare_exchange_strong(&t->nlevels, &expect, k + 1);
	return 1;
}

/* One round of the slow path in the newest level (top - 1): FOUND and
 * *rec when the stack is there or was placed there. */
static enum probe place(struct stacktab *t, unsigned top, uint64_t h,
			const uintptr_t *frames, uint32_t n,
			struct stack_rec **rec, int *carved)
{
	struct stack_slot *s;
	enum probe p = probe(t, top - 1, h, frames, n, rec, &s);
	while (p == ABSENT) {
		if (grow(t, top))
			return ABSENT; /* look again, in the new level */
		struct stack_rec *have = NULL;
		p = find_below(t, top - 1, h, frames, n, &have);
		if (p == BUSY)
			return BUSY;
		/* A new stack, no room for its record: drop it without
		 * claiming the slot, or refused stacks would fill every
		 * slot and make each later probe scan the whole level. */
		if (!have && atomic_load_explicit(&t->count,
						  memory_order_relaxed) >= t->limit)
			return FULL;
		uint64_t key = 0;
		if (atomic_compare_exchange_strong(&s->hash, &key, h)) {
			struct stack_rec *r = have;
			if (!r) {
				r = carve(t, frames, n, h);
				*carved = r != NULL;
			}
			atomic_store_explicit(&s->rec, r ? r : REC_FAILED,
					      memory_order_release);
			atomic_fetch_add_explicit(&t->level_used[top - 1], 1,
						  memory_order_relaxed);
			if (!r)
				return FULL;
			*rec = r;
			return FOUND;
		}
		/* Lost the slot: look again (the winner may be this stack). */
		p = probe(t, top - 1, h, frames, n, rec, &s);
	}
	return p;
}

__attribute__((noinline)) static struct stack_rec *
intern_slow(struct stacktab *t, const uintptr_t *frames, uint32_t n,
	    uint64_t h)
{
	struct stack_rec *mine = NULL; /* a record this call carved */
	/* Each round ends with the level count re-read unchanged or
	 * finds it grown: at most one round per level, and a few for
	 * levels opened by others meanwhile. */
	for (unsigned round = 0; round < 2 * STACK_LEVELS_MAX; round++) {
		unsigned top = atomic_load(&t->nlevels);
		struct stack_rec *r = NULL;
		int carved = 0;
		enum probe p = place(t, top, h, frames, n, &r, &carved);
		if (carved)
			mine = r;
		if (p == BUSY) /* counted by await_publish */
			return NULL;
		if (p == FULL) {
			atomic_fetch_add_explicit(&t->dropped_full, 1,
						  memory_order_relaxed);
			return NULL;
		}
		if (p == FOUND && atomic_load(&t->nlevels) == top) {
			if (mine && mine != r) {
				atomic_store_explicit(&mine->lost, 1,
						      memory_order_relaxed);
				atomic_fetch_add_explicit(&t->lost, 1,
							  memory_order_relaxed);
			}
			return r;
		}
	}
	/* Levels kept opening under this call: drop the sample. A record it
	 * carved was given to no one; others that find it place it as theirs. */
	atomic_fetch_add_explicit(&t->dropped_busy, 1, memory_order_relaxed);
	return NULL;
}

struct stack_rec *stacktab_intern(struct stacktab *t, const uintptr_t *frames,
				  uint32_t n)
{
	uint64_t h = hash_frames(frames, n);
	unsigned top = atomic_load(&t->nlevels);
	struct stack_rec *r;
	struct stack_slot *s;
	enum probe p = probe(t, top - 1, h, frames, n, &r, &s);
	if (p == FOUND && atomic_load(&t->nlevels) == top)
		return r;
	if (p == BUSY) /* counted by await_publish */
		return NULL;
	return intern_slow(t, frames, n, h);
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
