/* The preload's lock-free core (stack table, live map) without
 * interposition, hammered from 8 threads and then checked against a
 * sequential model. Built with -fsanitize=thread (tests/progs/extra.mk) so
 * that ThreadSanitizer watches every access; tests/test_core.py runs it.
 * It is built with STACK_LEVEL_MIN=64, so the stack table opens seven
 * levels while the threads intern, and the level count changes under
 * racing inserts of the same stack: each stack must still be one record.
 *
 * argv: rounds (default 4000). Prints one line per table on success; on a
 * mismatch prints what differs and exits 1.
 *
 * Stacks: NSTACKS distinct stacks, identified by their first frame (a tag
 * holding the stack's index). Every thread first interns all of them in
 * the same order right after a barrier, so identical inserts race, also
 * while the levels open. Pairs of two-frame stacks have equal 64-bit hashes, crafted by
 * inverting the table's hash (collide() below); the records' stored hashes
 * prove the collision happened, so a change of the hash function shows up
 * as a failure instead of a silently weaker test. A second, small table is
 * driven past its capacity to check the drop counters.
 *
 * Live map: each thread inserts and removes pointers of its own (unique,
 * never reused) into a map of MAP_CAP slots while up to MAP_LIVE pointers
 * per thread are live, so probe windows fill, inserts move on to the larger
 * levels and, with every level full, are dropped. The
 * fields of an entry are functions of its pointer, so a reader can tell a
 * torn entry. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../preload/livemap.h"
#include "../../preload/stacktab.h"

#define THREADS 8
#define NSTACKS 3000
#define PAIRS 200 /* colliding pairs, at the end of the stack list */
#define MAX_FRAMES 16
#define SMALL_CAP 500
/* Levels of 1024, 1024 and 2048 slots; built with LIVE_SMALL_LEVEL=1024,
 * so the first two are marked touched whole and the third page by page. */
#define MAP_CAP 4096
#define MAP_LIVE 500

struct stack {
	uint32_t n;
	uintptr_t frames[MAX_FRAMES];
};

static struct stack stacks[NSTACKS];
static struct stacktab big, small;
static struct livemap map;
static pthread_barrier_t start;
static long rounds = 4000;
static atomic_int failed;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "core: " __VA_ARGS__);                 \
			fputc('\n', stderr);                                   \
			atomic_store(&failed, 1);                              \
		}                                                              \
	} while (0)

/* The stack table's hash step (stacktab.c's hash_frames), used only to
 * craft collisions; the check on rec->hash catches any drift. */
#define K 0x9e3779b97f4a7c15ULL
static uint64_t step(uint64_t h, uintptr_t f)
{
	h ^= f;
	h *= K;
	return h ^ (h >> 29);
}

/* Frames for stack b such that its hash equals stack a's: both two frames
 * long, so after the first frame the states differ by h_a ^ h_b, and the
 * second frame of b cancels that difference. */
static void collide(struct stack *a, struct stack *b, uintptr_t tag_b)
{
	uint64_t h0 = 0x84222325cbf29ce4ULL ^ 2;
	b->n = 2;
	b->frames[0] = tag_b;
	b->frames[1] = a->frames[1] ^ step(h0, a->frames[0]) ^ step(h0, tag_b);
}

static uintptr_t tag(unsigned i)
{
	return 0x400000 + (uintptr_t)i * 16;
}

static unsigned index_of(const uintptr_t *frames)
{
	return (unsigned)((frames[0] - 0x400000) / 16);
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void make_stacks(void)
{
	uint64_t s = 88172645463325252ULL;
	for (unsigned i = 0; i < NSTACKS - 2 * PAIRS; i++) {
		stacks[i].n = 1 + (uint32_t)(rng(&s) % MAX_FRAMES);
		stacks[i].frames[0] = tag(i);
		for (uint32_t f = 1; f < stacks[i].n; f++)
			/* A few shared callers, so stacks overlap. */
			stacks[i].frames[f] = 0x500000 + (rng(&s) % 8) * 16 + f;
	}
	for (unsigned i = NSTACKS - 2 * PAIRS; i < NSTACKS; i += 2) {
		stacks[i].n = 2;
		stacks[i].frames[0] = tag(i);
		stacks[i].frames[1] = 0x600000 + (rng(&s) % 4096) * 16;
		collide(&stacks[i], &stacks[i + 1], tag(i + 1));
	}
}

static int frames_equal(const struct stack_rec *r, const struct stack *st)
{
	return r->nframes == st->n &&
	       memcmp(r->frames, st->frames, st->n * sizeof(uintptr_t)) == 0;
}

/* Readers: every record seen is whole and is the stack its tag names. */
static void check_rec(struct stack_rec *r, void *arg)
{
	(void)arg;
	unsigned i = index_of(r->frames);
	CHECK(r->nframes >= 1 && r->nframes <= MAX_FRAMES && i < NSTACKS &&
		  frames_equal(r, &stacks[i]),
	      "foreach saw a torn or unknown record (tag %#lx, %u frames)",
	      (unsigned long)r->frames[0], r->nframes);
}

static uint64_t size_of(uintptr_t p)
{
	return (p >> 4) % 100000 + 1;
}

static uint32_t stack_of(uintptr_t p)
{
	return (uint32_t)(p * 2654435761u >> 7);
}

static void check_live(const struct live_sample *s, void *arg)
{
	(void)arg;
	CHECK(s->size == size_of(s->ptr) && s->stack == stack_of(s->ptr) &&
		  s->time == (uint32_t)s->ptr,
	      "foreach saw a torn live entry %#lx", (unsigned long)s->ptr);
}

/* What one thread did, merged after the join. */
struct tally {
	struct stack_rec *seen[NSTACKS];
	uint64_t allocs[NSTACKS];
	uint64_t null_big, null_small;
	uintptr_t live[MAP_LIVE];
	unsigned nlive;
	uint64_t dropped;
	unsigned tid;
};

static void intern_one(struct tally *t, unsigned i)
{
	struct stack_rec *r = stacktab_intern(&big, stacks[i].frames, stacks[i].n);
	if (!r) {
		t->null_big++;
		return;
	}
	CHECK(frames_equal(r, &stacks[i]), "stack %u interned as another", i);
	CHECK(!t->seen[i] || t->seen[i] == r, "stack %u has two records", i);
	t->seen[i] = r;
	/* Sizes are whole numbers, so the double sums are exact. */
	stack_count(r, 1.0, (double)(i + 1));
	t->allocs[i]++;
}

static void live_step(struct tally *t, uint64_t *s, uintptr_t *next)
{
	if (t->nlive == MAP_LIVE || (t->nlive && rng(s) % 3 == 0)) {
		unsigned k = (unsigned)(rng(s) % t->nlive);
		uintptr_t p = t->live[k];
		struct live_sample out;
		CHECK(livemap_remove(&map, (void *)p, &out) == 1,
		      "live pointer %#lx not found", (unsigned long)p);
		CHECK(out.ptr == p && out.size == size_of(p) &&
			  out.stack == stack_of(p) && out.time == (uint32_t)p,
		      "remove of %#lx returned other fields", (unsigned long)p);
		t->live[k] = t->live[--t->nlive];
		return;
	}
	uintptr_t p = *next;
	*next += 16;
	if (livemap_insert(&map, (void *)p, size_of(p), stack_of(p),
			   (uint32_t)p))
		t->live[t->nlive++] = p;
	else
		t->dropped++;
	/* A pointer never inserted is never found. */
	struct live_sample out;
	CHECK(livemap_remove(&map, (void *)(p + 8), &out) == 0,
	      "removed a pointer never inserted");
}

static void *worker(void *arg)
{
	struct tally *t = arg;
	uint64_t s = 0x9e3779b97f4a7c15ULL * (t->tid + 1);
	uintptr_t next = ((uintptr_t)t->tid + 1) << 40;
	pthread_barrier_wait(&start);
	for (unsigned i = 0; i < NSTACKS; i++)
		intern_one(t, i);
	for (long round = 0; round < rounds; round++) {
		intern_one(t, (unsigned)(rng(&s) % NSTACKS));
		unsigned j = (unsigned)(rng(&s) % NSTACKS);
		if (!stacktab_intern(&small, stacks[j].frames, stacks[j].n))
			t->null_small++;
		live_step(t, &s, &next);
		if (round % 500 == (long)t->tid * 60) {
			stacktab_foreach(&big, check_rec, NULL);
			livemap_foreach(&map, check_live, NULL);
		}
	}
	return NULL;
}

struct seen_set {
	unsigned char *hits;
	uint64_t records;
};

static void mark(struct stack_rec *r, void *arg)
{
	struct seen_set *set = arg;
	unsigned i = index_of(r->frames);
	check_rec(r, NULL);
	if (i < NSTACKS)
		set->hits[i]++;
	set->records++;
}

static void check_stacks(struct tally *t)
{
	unsigned char hits[NSTACKS] = {0};
	struct seen_set set = {hits, 0};
	uint64_t nulls = 0;
	stacktab_foreach(&big, mark, &set);
	for (int k = 0; k < THREADS; k++)
		nulls += t[k].null_big;
	CHECK(atomic_load(&big.dropped_full) == 0, "big table dropped %lu as full",
	      (unsigned long)atomic_load(&big.dropped_full));
	CHECK(nulls == atomic_load(&big.dropped_busy),
	      "%lu interns failed, %lu counted busy", (unsigned long)nulls,
	      (unsigned long)atomic_load(&big.dropped_busy));
	/* Records that lost a race while a level opened are carved and
	 * listed, but given to no one and skipped by foreach. */
	uint64_t lost = atomic_load(&big.lost);
	CHECK(set.records + lost == atomic_load(&big.count) &&
		  atomic_load(&big.count) == atomic_load(&big.order_len),
	      "foreach gave %lu records, %lu lost, count %lu, order_len %lu",
	      (unsigned long)set.records, (unsigned long)lost,
	      (unsigned long)atomic_load(&big.count),
	      (unsigned long)atomic_load(&big.order_len));
	CHECK(atomic_load(&big.nlevels) >= 7,
	      "the table opened %u of %u levels, expected at least 7",
	      atomic_load(&big.nlevels), big.max_levels);
	unsigned present = 0;
	for (unsigned i = 0; i < NSTACKS; i++) {
		struct stack_rec *r = NULL;
		uint64_t allocs = 0;
		for (int k = 0; k < THREADS; k++) {
			if (t[k].seen[i]) {
				CHECK(!r || r == t[k].seen[i],
				      "threads got different records for stack %u", i);
				r = t[k].seen[i];
			}
			allocs += t[k].allocs[i];
		}
		CHECK(hits[i] <= 1, "stack %u stored %u times", i, hits[i]);
		CHECK(!r || hits[i] == 1, "stack %u interned but not listed", i);
		if (!r)
			continue;
		present++;
		CHECK(r == stacktab_intern(&big, stacks[i].frames, stacks[i].n),
		      "stack %u found as another record afterwards", i);
		double bytes = (double)(i + 1);
		struct stack_totals c;
		stack_read(r, &c);
		CHECK(c.samples == allocs && c.objs == (double)allocs &&
			  c.bytes == bytes * (double)allocs,
		      "stack %u counters %lu, expected %lu", i,
		      (unsigned long)c.samples, (unsigned long)allocs);
	}
	unsigned collided = 0;
	for (unsigned i = NSTACKS - 2 * PAIRS; i < NSTACKS; i += 2) {
		struct stack_rec *a = stacktab_intern(&big, stacks[i].frames, 2);
		struct stack_rec *b = stacktab_intern(&big, stacks[i + 1].frames, 2);
		CHECK(a && b && a != b && a->hash == b->hash,
		      "crafted pair %u has no two records with one hash "
		      "(has the hash function changed?)", i);
		collided += a && b && a->hash == b->hash;
	}
	printf("stack table: %u stacks, %u colliding pairs, %u levels, %lu lost, "
	       "%lu busy drops\n",
	       present, collided, atomic_load(&big.nlevels), (unsigned long)lost,
	       (unsigned long)atomic_load(&big.dropped_busy));
}

static void count_small(struct stack_rec *r, void *arg)
{
	(void)r;
	++*(uint64_t *)arg;
}

static void check_small(struct tally *t)
{
	uint64_t records = 0, nulls = 0;
	stacktab_foreach(&small, count_small, &records);
	for (int k = 0; k < THREADS; k++)
		nulls += t[k].null_small;
	uint64_t full = atomic_load(&small.dropped_full);
	uint64_t busy = atomic_load(&small.dropped_busy);
	CHECK(records + atomic_load(&small.lost) == SMALL_CAP &&
		  atomic_load(&small.count) == SMALL_CAP,
	      "full table holds %lu records (%lu lost), count %lu, capacity %d",
	      (unsigned long)records, (unsigned long)atomic_load(&small.lost),
	      (unsigned long)atomic_load(&small.count), SMALL_CAP);
	CHECK(nulls == full + busy && full > 0,
	      "%lu interns failed, %lu counted full, %lu busy",
	      (unsigned long)nulls, (unsigned long)full, (unsigned long)busy);
	printf("full table: %lu records, %lu dropped full, %lu busy\n",
	       (unsigned long)records, (unsigned long)full, (unsigned long)busy);
}

struct live_set {
	uint64_t n;
	uintptr_t *sorted;
	uint64_t total;
};

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static void find_live(const struct live_sample *s, void *arg)
{
	struct live_set *set = arg;
	check_live(s, NULL);
	CHECK(bsearch(&s->ptr, set->sorted, set->total, sizeof(uintptr_t),
		      cmp_ptr) != NULL,
	      "map holds %#lx, which is not live", (unsigned long)s->ptr);
	set->n++;
}

static void check_map(struct tally *t)
{
	static uintptr_t all[THREADS * MAP_LIVE];
	static unsigned filter[1u << LIVE_FILTER_BITS];
	uint64_t total = 0, dropped = 0;
	for (int k = 0; k < THREADS; k++) {
		for (unsigned j = 0; j < t[k].nlive; j++) {
			all[total++] = t[k].live[j];
			filter[live_filter_index((void *)t[k].live[j])]++;
		}
		dropped += t[k].dropped;
	}
	qsort(all, total, sizeof(all[0]), cmp_ptr);
	struct live_set set = {0, all, total};
	livemap_foreach(&map, find_live, &set);
	CHECK(set.n == total, "map lists %lu entries, model %lu",
	      (unsigned long)set.n, (unsigned long)total);
	CHECK(atomic_load(&map.levels_used) == map.nlevels && map.nlevels == 3,
	      "inserts reached %u of %u levels, expected 3 of 3",
	      atomic_load(&map.levels_used), map.nlevels);
	CHECK(atomic_load(&map.dropped) == dropped && dropped > 0,
	      "map dropped %lu, model %lu (the window should overflow)",
	      (unsigned long)atomic_load(&map.dropped), (unsigned long)dropped);
	for (unsigned i = 0; i < (1u << LIVE_FILTER_BITS); i++)
		CHECK(atomic_load(&map.filter[i]) == filter[i],
		      "filter[%u] = %u, model %u", i,
		      (unsigned)atomic_load(&map.filter[i]), filter[i]);
	for (uint64_t i = 0; i < total; i++)
		CHECK(livemap_maybe(&map, (void *)all[i]),
		      "filter misses live %#lx", (unsigned long)all[i]);
	printf("live map: %lu live, %lu dropped\n", (unsigned long)total,
	       (unsigned long)dropped);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		rounds = strtol(argv[1], NULL, 10);
	make_stacks();
	/* Room for a few records lost to races while levels open, and for
	 * the race at the cap (a thread that finds the table full while
	 * another inserts the same stack drops its sample): the small table
	 * checks the cap. */
	if (stacktab_init(&big, NSTACKS + 2 * THREADS) ||
	    stacktab_init(&small, SMALL_CAP) ||
	    livemap_init(&map, MAP_CAP)) {
		fprintf(stderr, "core: cannot map the tables\n");
		return 1;
	}
	static struct tally tallies[THREADS];
	pthread_t threads[THREADS];
	pthread_barrier_init(&start, NULL, THREADS);
	for (unsigned k = 0; k < THREADS; k++) {
		tallies[k].tid = k;
		pthread_create(&threads[k], NULL, worker, &tallies[k]);
	}
	for (int k = 0; k < THREADS; k++)
		pthread_join(threads[k], NULL);
	check_stacks(tallies);
	check_small(tallies);
	check_map(tallies);
	return atomic_load(&failed);
}
