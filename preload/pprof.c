/* The encoder of profile.proto, with protobuf's wire format written by
 * hand: the Profile message is a stream of top-level fields, so it is
 * written as it goes, and each nested message (sample, location, mapping)
 * is small enough to be sized before it is written. Repeated fields may
 * interleave on the wire, so strings and locations are written the first
 * time a sample needs them and take the next index.
 *
 * The semantics are those of tools/heaptrace_lib/pprof_proto.py and of
 * Go's heap profile: the four sample types in Go's order, values that are
 * already the unbiased estimates (pprof does not rescale a proto), the
 * space/bytes period of heap_v2 sampling. Locations are unsymbolized
 * addresses in mappings without functions: pprof names them from the
 * binaries or, without them, through symbolz. Each address is the return
 * address less one, inside the call instruction: pprof takes a proto's
 * addresses as they are (only legacy text profiles get the -1 from
 * pprof), and the call's line is what the frame means. */
#include "pprof.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "elfsym.h"
#include "outbuf.h"
#include "procmaps.h"
#include "snapshot.h"
#include "stacktab.h"

enum {
	PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE, PROFILE_MAPPING, PROFILE_LOCATION,
	PROFILE_STRING_TABLE = 6, PROFILE_TIME_NANOS = 9, PROFILE_DURATION_NANOS,
	PROFILE_PERIOD_TYPE, PROFILE_PERIOD, PROFILE_DEFAULT_SAMPLE_TYPE = 14,
	VALUE_TYPE_TYPE = 1, VALUE_TYPE_UNIT,
	SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE,
	MAPPING_ID = 1, MAPPING_START, MAPPING_LIMIT, MAPPING_OFFSET,
	MAPPING_FILENAME, MAPPING_BUILD_ID,
	LOCATION_ID = 1, LOCATION_MAPPING_ID, LOCATION_ADDRESS,
	WIRE_VARINT = 0, WIRE_BYTES = 2,
};

/* A small message being built on the stack. */
struct msg {
	unsigned char b[256];
	size_t len;
};

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80)
		v >>= 7, n++;
	return n;
}

static size_t put_varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

static void out_varint(struct outbuf *o, uint64_t v)
{
	unsigned char b[10];
	out_bytes(o, b, put_varint(b, v));
}

/* An int field; protobuf leaves out a zero. */
static void msg_int(struct msg *m, unsigned field, uint64_t v)
{
	if (!v || m->len + 20 > sizeof(m->b))
		return;
	m->len += put_varint(m->b + m->len, field << 3 | WIRE_VARINT);
	m->len += put_varint(m->b + m->len, v);
}

static void out_msg(struct outbuf *o, unsigned field, const struct msg *m)
{
	out_varint(o, field << 3 | WIRE_BYTES);
	out_varint(o, m->len);
	out_bytes(o, m->b, m->len);
}

static void out_int(struct outbuf *o, unsigned field, uint64_t v)
{
	if (!v)
		return;
	out_varint(o, field << 3 | WIRE_VARINT);
	out_varint(o, v);
}

struct enc {
	struct outbuf *o;
	const struct procmaps *pm;
	uint64_t strings; /* written so far */
	uint64_t locations;
};

/* Writes s as the next string of the table; its index. */
static uint64_t str(struct enc *e, const char *s)
{
	size_t n = strlen(s);
	out_varint(e->o, PROFILE_STRING_TABLE << 3 | WIRE_BYTES);
	out_varint(e->o, n);
	out_bytes(e->o, s, n);
	return e->strings++;
}

static void value_type(struct enc *e, unsigned field, const char *type,
		       const char *unit)
{
	struct msg m = {.len = 0};
	msg_int(&m, VALUE_TYPE_TYPE, str(e, type));
	msg_int(&m, VALUE_TYPE_UNIT, str(e, unit));
	out_msg(e->o, field, &m);
}

static void mappings(struct enc *e)
{
	for (size_t i = 0; i < e->pm->n; i++) {
		const struct mapping *mp = &e->pm->m[i];
		char id[130];
		elfsym_build_id(mp, id, sizeof(id));
		uint64_t file = str(e, mp->path);
		uint64_t build_id = id[0] ? str(e, id) : 0;
		struct msg m = {.len = 0};
		msg_int(&m, MAPPING_ID, i + 1);
		msg_int(&m, MAPPING_START, mp->start);
		msg_int(&m, MAPPING_LIMIT, mp->end);
		msg_int(&m, MAPPING_OFFSET, mp->offset);
		msg_int(&m, MAPPING_FILENAME, file);
		msg_int(&m, MAPPING_BUILD_ID, build_id);
		out_msg(e->o, PROFILE_MAPPING, &m);
	}
}

/* Location ids by address: open addressing over the tracer's memory,
 * doubled when half full, kept from one profile to the next. */
struct loc_slot {
	uint64_t addr; /* 0 = empty */
	uint64_t id;
};
static struct loc_slot *locs;
static size_t locs_cap, locs_used;

static int locs_reset(void)
{
	if (!locs) {
		locs_cap = 1 << 14;
		if (!(locs = arena_map(locs_cap * sizeof(*locs))))
			return -1;
	} else if (locs_used) {
		memset(locs, 0, locs_cap * sizeof(*locs));
	}
	locs_used = 0;
	return 0;
}

static struct loc_slot *locs_find(struct loc_slot *t, size_t cap, uint64_t addr)
{
	size_t i = (size_t)((addr * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
	while (t[i].addr && t[i].addr != addr)
		i = (i + 1) & (cap - 1);
	return &t[i];
}

static int locs_grow(void)
{
	size_t cap = 2 * locs_cap;
	struct loc_slot *bigger = arena_map(cap * sizeof(*bigger));
	if (!bigger)
		return -1;
	for (size_t i = 0; i < locs_cap; i++)
		if (locs[i].addr)
			*locs_find(bigger, cap, locs[i].addr) = locs[i];
	arena_unmap(locs, locs_cap * sizeof(*locs));
	locs = bigger;
	locs_cap = cap;
	return 0;
}

/* The id of the location at addr, written now if it is new; 0 when the
 * tracer's memory ran out. */
static uint64_t location(struct enc *e, uint64_t addr)
{
	if (2 * (locs_used + 1) > locs_cap && locs_grow())
		return 0;
	struct loc_slot *s = locs_find(locs, locs_cap, addr);
	if (s->addr)
		return s->id;
	s->addr = addr;
	s->id = ++e->locations;
	locs_used++;
	const struct mapping *mp = procmaps_find(e->pm, (uintptr_t)addr);
	struct msg m = {.len = 0};
	msg_int(&m, LOCATION_ID, s->id);
	msg_int(&m, LOCATION_MAPPING_ID, mp ? (uint64_t)(mp - e->pm->m) + 1 : 0);
	msg_int(&m, LOCATION_ADDRESS, addr);
	out_msg(e->o, PROFILE_LOCATION, &m);
	return s->id;
}

static void packed(struct outbuf *o, unsigned field, const uint64_t *v, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += varint_len(v[i]);
	out_varint(o, field << 3 | WIRE_BYTES);
	out_varint(o, len);
	for (size_t i = 0; i < n; i++)
		out_varint(o, v[i]);
}

static size_t packed_len(unsigned field, const uint64_t *v, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += varint_len(v[i]);
	return varint_len(field << 3 | WIRE_BYTES) + varint_len(len) + len;
}

/* int64 values as protobuf has them: two's complement, ten bytes when
 * negative (a delta's in-use bytes may be). */
static uint64_t int64_bits(double v)
{
	return (uint64_t)(int64_t)llround(v);
}

static int sample(struct enc *e, const struct snap *s)
{
	uint64_t values[4] = {int64_bits(s->al_objs), int64_bits(s->al_bytes),
			      int64_bits(s->in_objs), int64_bits(s->in_bytes)};
	if (!(values[0] | values[1] | values[2] | values[3]))
		return 0; /* as pprof's merge drops them from a delta */
	uint64_t ids[HT_MAX_FRAMES_LIMIT];
	size_t n = 0;
	for (uint32_t i = 0; i < s->rec->nframes && n < HT_MAX_FRAMES_LIMIT; i++) {
		uintptr_t pc = s->rec->frames[i];
		if (pc <= 1)
			continue;
		if (!(ids[n++] = location(e, pc - 1)))
			return ENOMEM;
	}
	size_t len = (n ? packed_len(SAMPLE_LOCATION_ID, ids, n) : 0) +
		     packed_len(SAMPLE_VALUE, values, 4);
	out_varint(e->o, PROFILE_SAMPLE << 3 | WIRE_BYTES);
	out_varint(e->o, len);
	if (n)
		packed(e->o, SAMPLE_LOCATION_ID, ids, n);
	packed(e->o, SAMPLE_VALUE, values, 4);
	return 0;
}

int pprof_write(struct outbuf *o, const struct snapshot *s,
		const struct procmaps *pm, const struct pprof_meta *meta)
{
	struct enc e = {.o = o, .pm = pm};
	if (locs_reset())
		return ENOMEM;
	str(&e, ""); /* index 0 is the empty string */
	value_type(&e, PROFILE_SAMPLE_TYPE, "alloc_objects", "count");
	value_type(&e, PROFILE_SAMPLE_TYPE, "alloc_space", "bytes");
	value_type(&e, PROFILE_SAMPLE_TYPE, "inuse_objects", "count");
	value_type(&e, PROFILE_SAMPLE_TYPE, "inuse_space", "bytes");
	value_type(&e, PROFILE_PERIOD_TYPE, "space", "bytes");
	out_int(o, PROFILE_PERIOD, ht_config.rate);
	out_int(o, PROFILE_TIME_NANOS, meta->time_ns);
	out_int(o, PROFILE_DURATION_NANOS, meta->duration_ns);
	out_int(o, PROFILE_DEFAULT_SAMPLE_TYPE, str(&e, meta->default_type));
	mappings(&e);
	for (size_t i = 0; i < s->n && !o->err; i++) {
		int err = sample(&e, &s->snaps[i]);
		if (err)
			return err;
	}
	return o->err;
}
