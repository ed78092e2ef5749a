/* Open addressing over a fixed window of LIVE_PROBE_WINDOW slots from the
 * pointer's home slot in each level. A bounded window keeps every operation
 * cheap no matter how many tombstones accumulate; an insert that finds the
 * window full tries the next level, and one that finds every level full is
 * dropped and counted rather than searching further.
 *
 * Inserts go to the largest level in use, which holds most entries, and
 * move up only when its window is full; the smaller levels below drain as
 * their entries are freed, and take inserts again only once the last level
 * is full too. A remove looks from the largest level down.
 *
 * A slot is EMPTY only until its first claim, and an insert takes the first
 * EMPTY or TOMB slot of the window, so every slot before a live entry's has
 * been claimed: a remove stops at the first EMPTY slot of a level.
 *
 * Ordering: a slot is claimed by CAS to LIVE_BUSY, its fields are written,
 * and then the pointer is stored with release, so a reader that acquires
 * the key sees the fields. Only the owner of a pointer (the thread freeing
 * it) removes it, and it is unique while live, so removal needs no CAS. */
#include "livemap.h"

#include "arena.h"

struct livemap ht_live;

#define PAGE 4096

static size_t page_of(const struct livemap *m, const struct live_entry *e)
{
	return (size_t)((const char *)e - (const char *)m->slots) / PAGE;
}

static void mark_touched(struct livemap *m, const struct live_entry *e)
{
	size_t page = page_of(m, e);
	uint64_t bit = 1ULL << (page % 64);
	_Atomic uint64_t *w = &m->touched[page / 64];
	/* Set once per page, then only read: no shared line is written. */
	if (!(atomic_load_explicit(w, memory_order_relaxed) & bit))
		atomic_fetch_or_explicit(w, bit, memory_order_relaxed);
}

static uint64_t hash_of(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static struct live_entry *slot_at(struct livemap *m, unsigned level,
				  uint64_t h, unsigned i)
{
	const struct live_level *l = &m->level[level];
	return &m->slots[l->base + ((h + i) & l->mask)];
}

static void filter_add(struct livemap *m, const void *p, int delta)
{
	_Atomic uint8_t *f = &m->filter[live_filter_index(p)];
	uint8_t old = atomic_load_explicit(f, memory_order_relaxed);
	do {
		if (old == UINT8_MAX)
			return; /* saturated: stays "maybe" for good */
	} while (!atomic_compare_exchange_weak_explicit(
	    f, &old, (uint8_t)(old + delta), memory_order_relaxed,
	    memory_order_relaxed));
}

int livemap_init(struct livemap *m, uint64_t capacity)
{
	uint64_t n = LIVE_PROBE_WINDOW;
	while (n < capacity)
		n <<= 1;
	size_t bytes = n * sizeof(struct live_entry);
	m->slots = arena_map(bytes);
	m->touched = arena_map((bytes / PAGE / 64 + 1) * sizeof(uint64_t));
	if (!m->slots || !m->touched) {
		arena_unmap(m->slots, bytes);
		m->slots = NULL;
		return -1;
	}
	/* n = s + s + 2s + 4s + ... + n/2 with s = LIVE_LEVEL_MIN. */
	uint64_t size = n < LIVE_LEVEL_MIN ? n : LIVE_LEVEL_MIN, base = 0;
	m->nlevels = 0;
	while (base < n) {
		m->level[m->nlevels++] = (struct live_level){base, size - 1};
		base += size;
		if (base > size)
			size <<= 1;
	}
	m->capacity = n;
	return 0;
}

/* Small levels are marked touched whole when they open, so that inserts
 * there skip the bitmap: one cache miss less on every sample of a program
 * with few live samples. A dump reads the few untouched pages as zeros. */
static int marked_whole(const struct livemap *m, unsigned level)
{
	return m->level[level].mask < LIVE_SMALL_LEVEL;
}

static void note_level(struct livemap *m, unsigned level)
{
	unsigned used = atomic_load_explicit(&m->levels_used,
					     memory_order_relaxed);
	if (used <= level && marked_whole(m, level)) {
		const struct live_level *l = &m->level[level];
		/* Before the level is published, so no entry is unmarked. */
		for (uint64_t i = 0; i <= l->mask; i += PAGE / sizeof(*m->slots))
			mark_touched(m, &m->slots[l->base + i]);
		mark_touched(m, &m->slots[l->base + l->mask]);
	}
	while (used <= level &&
	       !atomic_compare_exchange_weak_explicit(
		   &m->levels_used, &used, level + 1, memory_order_relaxed,
		   memory_order_relaxed))
		;
}

void livemap_prefetch(struct livemap *m, const void *p)
{
	if (!m->slots)
		return;
	unsigned used = atomic_load_explicit(&m->levels_used,
					     memory_order_relaxed);
	__builtin_prefetch(slot_at(m, used ? used - 1 : 0, hash_of(p), 0), 1);
}

int livemap_insert(struct livemap *m, const void *p, uint64_t size,
		   uint32_t stack, uint32_t time)
{
	uint64_t h = hash_of(p);
	unsigned used = atomic_load_explicit(&m->levels_used,
					     memory_order_relaxed);
	unsigned top = used ? used - 1 : 0, above = m->nlevels - top;
	for (unsigned n = 0; n < m->nlevels; n++) {
		/* The largest level in use and the ones after it; with all
		 * of them full, the ones below, where frees have made room. */
		unsigned level = n < above ? top + n : m->nlevels - 1 - n;
		/* Published before the key, so that a remove of p, which
		 * comes after this insert, looks in this level. */
		note_level(m, level);
		for (unsigned i = 0; i < LIVE_PROBE_WINDOW; i++) {
			struct live_entry *e = slot_at(m, level, h, i);
			uintptr_t k = atomic_load_explicit(
			    &e->key, memory_order_relaxed);
			if (k != LIVE_EMPTY && k != LIVE_TOMB)
				continue;
			if (!atomic_compare_exchange_strong_explicit(
				&e->key, &k, LIVE_BUSY, memory_order_acquire,
				memory_order_relaxed))
				continue;
			/* Seqlock writer: the claim is visible before any
			 * field, so a reader never takes our fields for the
			 * previous entry's. */
			atomic_thread_fence(memory_order_release);
			if (!marked_whole(m, level))
				mark_touched(m, e);
			atomic_store_explicit(&e->size, size,
					      memory_order_relaxed);
			atomic_store_explicit(&e->stack, stack,
					      memory_order_relaxed);
			atomic_store_explicit(&e->time, time,
					      memory_order_relaxed);
			/* The filter before the key: a free of p that finds
			 * the key must have passed the filter. */
			filter_add(m, p, 1);
			atomic_store_explicit(&e->key, (uintptr_t)p,
					      memory_order_release);
			return 1;
		}
	}
	atomic_fetch_add_explicit(&m->dropped, 1, memory_order_relaxed);
	return 0;
}

static void read_entry(struct live_entry *e, uintptr_t key,
		       struct live_sample *out)
{
	out->ptr = key;
	out->size = atomic_load_explicit(&e->size, memory_order_relaxed);
	out->stack = atomic_load_explicit(&e->stack, memory_order_relaxed);
	out->time = atomic_load_explicit(&e->time, memory_order_relaxed);
}

int livemap_remove(struct livemap *m, const void *p, struct live_sample *out)
{
	if (!m->slots)
		return 0;
	uint64_t h = hash_of(p);
	unsigned used = atomic_load_explicit(&m->levels_used,
					     memory_order_relaxed);
	for (unsigned level = used; level-- > 0;) {
		for (unsigned i = 0; i < LIVE_PROBE_WINDOW; i++) {
			struct live_entry *e = slot_at(m, level, h, i);
			uintptr_t k = atomic_load_explicit(
			    &e->key, memory_order_acquire);
			if (k == LIVE_EMPTY)
				break;
			if (k != (uintptr_t)p)
				continue;
			read_entry(e, (uintptr_t)p, out);
			atomic_store_explicit(&e->key, LIVE_TOMB,
					      memory_order_release);
			filter_add(m, p, -1);
			return 1;
		}
	}
	return 0;
}

void livemap_pin(struct livemap *m, const void *p)
{
	atomic_store_explicit(&m->filter[live_filter_index(p)], UINT8_MAX,
			      memory_order_relaxed);
}

void livemap_foreach(struct livemap *m,
		     void (*fn)(const struct live_sample *s, void *arg),
		     void *arg)
{
	if (!m->slots)
		return;
	for (uint64_t i = 0; i < m->capacity; i++) {
		struct live_entry *e = &m->slots[i];
		struct live_sample copy;
		size_t page = page_of(m, e);
		if (!(atomic_load_explicit(&m->touched[page / 64],
					   memory_order_relaxed) &
		      (1ULL << (page % 64)))) {
			/* Skip to the first entry that starts on the next page. */
			uint64_t next = ((page + 1) * PAGE + sizeof(*e) - 1) /
					sizeof(*e);
			i = next - 1;
			continue;
		}
		uintptr_t k = atomic_load_explicit(&e->key, memory_order_acquire);
		if (k == LIVE_EMPTY || k == LIVE_BUSY || k == LIVE_TOMB)
			continue;
		read_entry(e, k, &copy);
		/* Seqlock-style: if the key changed while the fields were read,
		 * the slot was reused and the copy may mix two entries. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&e->key, memory_order_relaxed) != k)
			continue;
		fn(&copy, arg);
	}
}
