/* One reading of the tables, shared by the dump file and the HTTP
 * profiles so that both give the same numbers: each stack's allocation
 * estimates, what of it is in use (from the live map) and its ages. */
#ifndef HEAPTRACE_SNAPSHOT_H
#define HEAPTRACE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define AGE_BUCKETS (HT_MAX_AGE_BOUNDS + 1)

struct stack_rec;

struct snap {
	struct stack_rec *rec;
	uint64_t samples, live_samples; /* allocations sampled, still live */
	double in_objs, in_bytes, al_objs, al_bytes;
	uint64_t in_c, in_b, al_c, al_b; /* as a legacy reader takes them */
	double ages[AGE_BUCKETS][2];
};

/* A snapshot and the scratch it lives in, kept from one use to the next
 * (mapping it afresh each time would cost a page fault per page, which at
 * 100k stacks is most of a dump's time). Zero-initialised before first use. */
struct snapshot {
	struct snap *snaps;
	size_t n, cap;
	uint32_t now; /* tracer_now_ticks() when taken */
};

/* Reads the tables into s. Under the dump lock (dumper_lock()): it uses
 * the records' dump_index. 0, or -1 when the tracer's memory ran out. */
int snapshot_take(struct snapshot *s);

/* The integers (c, b) that pprof's heap_v2 scaling turns back into about
 * (objs, bytes). */
void reader_pair(double objs, double bytes, uint64_t *c, uint64_t *b);

#endif
