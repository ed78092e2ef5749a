/* See profile.h. Every entry point takes the profile lock (only the
 * server thread does, so no program thread ever waits on it), reads the
 * tables under the dump lock into a snapshot of its own and lets the dump
 * lock go before writing anything to the client: stack records are never
 * freed, so the snapshot's pointers stay good. */
#include "profile.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "dumper.h"
#include "elfsym.h"
#include "gzout.h"
#include "livemap.h"
#include "outbuf.h"
#include "pprof.h"
#include "procfs.h"
#include "procmaps.h"
#include "snapshot.h"
#include "stacktab.h"

static pthread_mutex_t profile_lock = PTHREAD_MUTEX_INITIALIZER;
static struct snapshot snap; /* under profile_lock, like what follows */
static struct procmaps maps;

struct base_ent {
	const struct stack_rec *rec;
	uint64_t samples;
	double in_objs, in_bytes, al_objs, al_bytes;
};

struct heap_base {
	size_t bytes; /* of the mapping that holds it */
	uint64_t time_ns;
	size_t n;
	struct base_ent e[];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Go's delta (net/http/pprof's serveDeltaProfile): the base subtracted
 * from now for every sample type. Under the dump lock, right after the
 * snapshot, whose records' dump_index still point at it. */
static void subtract(const struct heap_base *b)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct base_ent *e = &b->e[i];
		uint32_t k = e->rec->dump_index;
		if (k == 0 || k > snap.n || snap.snaps[k - 1].rec != e->rec)
			continue;
		struct snap *s = &snap.snaps[k - 1];
		s->samples -= e->samples;
		s->in_objs -= e->in_objs;
		s->in_bytes -= e->in_bytes;
		s->al_objs -= e->al_objs;
		s->al_bytes -= e->al_bytes;
	}
	for (size_t i = 0; i < snap.n; i++) {
		struct snap *s = &snap.snaps[i];
		reader_pair(s->in_objs, s->in_bytes, &s->in_c, &s->in_b);
		reader_pair(s->al_objs, s->al_bytes, &s->al_c, &s->al_b);
	}
}

/* Under profile_lock: the snapshot of now, less base if given. */
static int collect(const struct heap_base *base)
{
	dumper_lock();
	int err = snapshot_take(&snap) ? ENOMEM : 0;
	if (!err && base)
		subtract(base);
	dumper_unlock();
	return err;
}

static void sum(struct heap_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < snap.n; i++) {
		const struct snap *s = &snap.snaps[i];
		t->inuse_objects += s->in_objs;
		t->inuse_bytes += s->in_bytes;
		t->alloc_objects += s->al_objs;
		t->alloc_bytes += s->al_bytes;
		t->samples += s->samples;
	}
	t->dropped = atomic_load(&ht_stacks.dropped_full) +
		     atomic_load(&ht_stacks.dropped_busy) +
		     atomic_load(&ht_live.dropped);
	t->stacks = snap.n;
	t->tracer_bytes = arena_resident_bytes();
}

void heap_totals_get(struct heap_totals *t)
{
	pthread_mutex_lock(&profile_lock);
	if (collect(NULL))
		snap.n = 0; /* no memory for a snapshot: totals of nothing */
	sum(t);
	pthread_mutex_unlock(&profile_lock);
}

struct heap_base *heap_base_take(void)
{
	struct heap_base *b = NULL;
	pthread_mutex_lock(&profile_lock);
	uint64_t time_ns = now_ns();
	if (!collect(NULL)) {
		size_t bytes = sizeof(*b) + snap.n * sizeof(b->e[0]);
		if ((b = arena_map(bytes))) {
			b->bytes = bytes;
			b->time_ns = time_ns;
			b->n = snap.n;
			for (size_t i = 0; i < snap.n; i++) {
				const struct snap *s = &snap.snaps[i];
				b->e[i] = (struct base_ent){s->rec, s->samples,
							    s->in_objs, s->in_bytes,
							    s->al_objs, s->al_bytes};
			}
		}
	}
	pthread_mutex_unlock(&profile_lock);
	return b;
}

void heap_base_release(struct heap_base *b)
{
	if (b)
		arena_unmap(b, b->bytes);
}

int profile_write_proto(struct outbuf *o, enum profile_type type,
			const struct heap_base *base)
{
	pthread_mutex_lock(&profile_lock);
	struct pprof_meta meta = {
	    .default_type = type == PROFILE_ALLOCS ? "alloc_space" : "inuse_space",
	    .time_ns = now_ns(),
	};
	if (base)
		meta.duration_ns = meta.time_ns - base->time_ns;
	int err = collect(base);
	if (!err)
		err = procmaps_read(&maps);
	if (!err)
		err = gzout_begin(GZOUT_PROFILE, o);
	if (!err) {
		err = pprof_write(o, &snap, &maps, &meta);
		gzout_end(o);
		out_flush(o);
		if (!err)
			err = o->err;
	}
	pthread_mutex_unlock(&profile_lock);
	return err;
}

/* "0x<addr>\t<name>+0x<off>\t" for a frame the process can name. */
static void put_frame(struct outbuf *o, uintptr_t pc)
{
	const struct mapping *m = procmaps_find(&maps, pc);
	const char *name;
	uint64_t off;
	out_str(o, "#\t0x");
	out_hex(o, pc);
	if (m && elfsym_lookup(m, pc, &name, &off)) {
		out_str(o, "\t");
		out_str(o, name);
		out_str(o, "+0x");
		out_hex(o, off);
		out_str(o, "\t");
	}
	out_str(o, "\n");
}

static void put_fixed(struct outbuf *o, const char *key, double v)
{
	out_str(o, "# ");
	out_str(o, key);
	out_str(o, " = ");
	out_fixed3(o, v);
	out_str(o, "\n");
}

static void put_u64(struct outbuf *o, const char *key, uint64_t v)
{
	out_str(o, "# ");
	out_str(o, key);
	out_str(o, " = ");
	out_u64(o, v);
	out_str(o, "\n");
}

/* Go's layout: a header of totals, each stack as its counts and return
 * addresses, the frames named, then the estimates in plain words; and the
 * maps, so that the page is a legacy heap_v2 profile pprof reads, with
 * the counts a dump file has. */
int profile_write_text(struct outbuf *o, const struct heap_base *base)
{
	pthread_mutex_lock(&profile_lock);
	int err = collect(base);
	if (!err)
		err = procmaps_read(&maps);
	if (!err) {
		uint64_t c = 0, b = 0, ac = 0, ab = 0;
		for (size_t i = 0; i < snap.n; i++) {
			const struct snap *s = &snap.snaps[i];
			c += s->in_c, b += s->in_b, ac += s->al_c, ab += s->al_b;
		}
		out_str(o, "heap profile: ");
		out_heap_counts(o, c, b, ac, ab);
		out_str(o, " heap_v2/");
		out_u64(o, ht_config.rate);
		out_str(o, "\n");
		for (size_t i = 0; i < snap.n && !o->err; i++) {
			const struct snap *s = &snap.snaps[i];
			if (!(s->in_c | s->in_b | s->al_c | s->al_b))
				continue;
			out_sample_counts(o, s->in_c, s->in_b, s->al_c, s->al_b);
			out_frames(o, s->rec->frames, s->rec->nframes);
			out_str(o, "\n");
			out_zero_byte_objects(o, s->in_c, s->in_b, s->al_c,
					      s->al_b);
			for (uint32_t k = 0; k < s->rec->nframes; k++)
				if (s->rec->frames[k] > 1)
					put_frame(o, s->rec->frames[k] - 1);
			out_str(o, "\n");
		}
		struct heap_totals t;
		sum(&t);
		out_str(o, "\n# heaptrace\n");
		put_fixed(o, "inuse_objects", t.inuse_objects);
		put_fixed(o, "inuse_bytes", t.inuse_bytes);
		put_fixed(o, "alloc_objects", t.alloc_objects);
		put_fixed(o, "alloc_bytes", t.alloc_bytes);
		put_u64(o, "rss_bytes", proc_rss_bytes());
		put_u64(o, "rate", ht_config.rate);
		put_u64(o, "samples", t.samples);
		put_u64(o, "dropped", t.dropped);
		put_u64(o, "stacks", t.stacks);
		put_u64(o, "tracer_bytes", t.tracer_bytes);
		/* as in a dump: pprof reads the page with the binaries */
		out_str(o, "\nMAPPED_LIBRARIES:\n");
		proc_copy(o, "/proc/self/maps");
		out_flush(o);
		err = o->err;
	}
	pthread_mutex_unlock(&profile_lock);
	return err;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* pprof's request: addresses in hex, "0x" optional, joined by '+'. The
 * work is one binary search per address, bounded by the body the server
 * accepted, and one reading per mapped file the first time it is asked. */
int symbolz_write(struct outbuf *o, const char *body, size_t len)
{
	if (!body) {
		out_str(o, "num_symbols: 1\n");
		out_flush(o);
		return o->err;
	}
	pthread_mutex_lock(&profile_lock);
	int err = procmaps_read(&maps);
	for (size_t i = 0; i < len && !err && !o->err;) {
		while (i < len && hex_digit(body[i]) < 0)
			i++;
		if (i + 1 < len && body[i] == '0' && (body[i + 1] | 0x20) == 'x')
			i += 2;
		uint64_t addr = 0;
		int digits = 0;
		for (; i < len && hex_digit(body[i]) >= 0; i++, digits++)
			addr = addr << 4 | (uint64_t)hex_digit(body[i]);
		if (!digits || digits > 16)
			continue;
		const struct mapping *m = procmaps_find(&maps, (uintptr_t)addr);
		const char *name;
		uint64_t off;
		if (!m || !elfsym_lookup(m, (uintptr_t)addr, &name, &off))
			continue;
		out_str(o, "0x");
		out_hex(o, addr);
		out_str(o, "\t");
		out_str(o, name);
		out_str(o, "\n");
	}
	out_flush(o);
	if (!err)
		err = o->err;
	pthread_mutex_unlock(&profile_lock);
	return err;
}

int profile_with_names(void (*fn)(void *arg, struct outbuf *o), void *arg,
		       struct outbuf *o)
{
	pthread_mutex_lock(&profile_lock);
	int err = procmaps_read(&maps);
	if (!err)
		fn(arg, o);
	pthread_mutex_unlock(&profile_lock);
	return err;
}

void profile_put_frame(struct outbuf *o, uintptr_t return_address)
{
	if (return_address > 1)
		put_frame(o, return_address - 1);
}

void profile_prefork(void)
{
	pthread_mutex_lock(&profile_lock);
}

void profile_postfork_parent(void)
{
	pthread_mutex_unlock(&profile_lock);
}

void profile_postfork_child(void)
{
	pthread_mutex_unlock(&profile_lock);
}
