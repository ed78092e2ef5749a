/* The snapshot reads the tables while other threads keep allocating, in
 * three steps: the list of stacks, then the live map, which gives each
 * stack's bytes in use and their ages (entries that change while being
 * read are skipped), then each stack's allocation counts. Totals summed
 * from one snapshot agree with its stacks.
 *
 * Each stack's estimate also comes as the integers that pprof's heap_v2
 * scaling, 1/(1-exp(-avg/rate)), turns back into that estimate. */
#include "snapshot.h"

#include <math.h>
#include <string.h>

#include "arena.h"
#include "livemap.h"
#include "sampler.h"
#include "stacktab.h"
#include "tracer.h"

static int reserve(struct snapshot *d, size_t stacks)
{
	if (stacks <= d->cap)
		return 0;
	size_t cap = stacks > 2 * d->cap ? stacks : 2 * d->cap;
	struct snap *bigger = arena_map(cap * sizeof(struct snap));
	if (!bigger)
		return -1;
	arena_unmap(d->snaps, d->cap * sizeof(struct snap));
	d->snaps = bigger;
	d->cap = cap;
	return 0;
}

/* Both times 1-exp(-x/rate), x the mean size, as jemalloc writes them. The
 * rounding of c to a whole count is the one error left, about 1/(2c)
 * relative on each line, and it does not favour either direction. */
void reader_pair(double objs, double bytes, uint64_t *c, uint64_t *b)
{
	if (objs < 0.5) {
		*c = *b = 0;
		return;
	}
	double q = 1.0;
	if (ht_config.rate > 1 && bytes > 0)
		q = -expm1(-(bytes / objs) / (double)ht_config.rate);
	*c = (uint64_t)llround(objs * q);
	*b = (uint64_t)llround(bytes * q);
	if (*c == 0 && *b > 0)
		*c = 1; /* a count of 0 with bytes is an error to readers */
}

static void snap_one(struct stack_rec *r, void *arg)
{
	struct snapshot *d = arg;
	if (d->n == d->cap)
		return;
	struct stack_totals t;
	stack_read(r, &t);
	if (t.samples == 0)
		return; /* a thread creation stack, no samples */
	struct snap *s = &d->snaps[d->n];
	memset(s, 0, sizeof(*s));
	s->rec = r;
	r->dump_index = (uint32_t)++d->n; /* 0 = not in this snapshot */
}

/* What is in use is the sum of the live samples, by stack and by age. */
static void add_live(const struct live_sample *ls, void *arg)
{
	struct snapshot *d = arg;
	/* A torn read could give any id: check it names a carved record. */
	struct stack_rec *r = stacktab_rec_checked(&ht_stacks, ls->stack);
	if (!r || r->dump_index == 0 || r->dump_index > d->n)
		return;
	struct snap *s = &d->snaps[r->dump_index - 1];
	if (s->rec != r)
		return;
	uint64_t age = d->now > ls->time ? d->now - ls->time : 0;
	unsigned b = 0;
	while (b < ht_config.n_age_bounds &&
	       age >= (uint64_t)ht_config.age_bounds_s[b] * TRACER_TICKS_PER_S)
		b++;
	double w = sampler_weight(ls->size);
	s->live_samples++;
	s->ages[b][0] += w;
	s->ages[b][1] += w * (double)ls->size;
}

/* The allocation counts are read after the live map: every sample found
 * live was counted before it was inserted, so none is in use that the
 * counts have not seen allocated. In use is the sum of the age buckets. */
static void read_allocated(struct snapshot *d)
{
	for (size_t i = 0; i < d->n; i++) {
		struct snap *s = &d->snaps[i];
		struct stack_totals t;
		stack_read(s->rec, &t);
		s->samples = t.samples;
		s->al_objs = t.objs;
		s->al_bytes = t.bytes;
		for (unsigned b = 0; b < AGE_BUCKETS; b++) {
			s->in_objs += s->ages[b][0];
			s->in_bytes += s->ages[b][1];
		}
		reader_pair(s->in_objs, s->in_bytes, &s->in_c, &s->in_b);
		reader_pair(s->al_objs, s->al_bytes, &s->al_c, &s->al_b);
	}
}

int snapshot_take(struct snapshot *d)
{
	if (reserve(d, atomic_load(&ht_stacks.order_len) + 1024))
		return -1;
	d->n = 0;
	stacktab_foreach(&ht_stacks, snap_one, d);
	d->now = tracer_now_ticks();
	livemap_foreach(&ht_live, add_live, d);
	read_allocated(d);
	return 0;
}
