/* See metrics.h. The heap's figures are estimates scaled from samples,
 * the same as a dump's header gives (exact at HEAPTRACE_RATE=1); the
 * names follow Prometheus's rules (units in the name, counters end in
 * _total) so that `promtool check metrics` passes them. */
#include "metrics.h"

#include <math.h>
#include <stdint.h>

#include "config.h"
#include "dumper.h"
#include "outbuf.h"
#include "procfs.h"
#include "profile.h"
#include "threads.h"

static void metric(struct outbuf *o, const char *name, const char *type,
		   const char *help, uint64_t value)
{
	out_str(o, "# HELP ");
	out_str(o, name);
	out_str(o, " ");
	out_str(o, help);
	out_str(o, "\n# TYPE ");
	out_str(o, name);
	out_str(o, " ");
	out_str(o, type);
	out_str(o, "\n");
	out_str(o, name);
	out_field_u64(o, value);
	out_str(o, "\n");
}

static uint64_t whole(double v)
{
	return v > 0 ? (uint64_t)llround(v) : 0;
}

struct thread_sums {
	uint64_t live, unjoined;
};

static void add_threads(void *arg, const struct thread_group *g)
{
	struct thread_sums *s = arg;
	s->live += g->live;
	s->unjoined += g->unjoined;
}

void metrics_write(struct outbuf *o)
{
	struct heap_totals t;
	struct thread_sums th = {0, 0};
	heap_totals_get(&t);
	threads_each(add_threads, &th);
	metric(o, "heaptrace_heap_inuse_bytes", "gauge",
	       "Bytes of heap in use now (estimated from samples).",
	       whole(t.inuse_bytes));
	metric(o, "heaptrace_heap_inuse_objects", "gauge",
	       "Heap blocks in use now (estimated from samples).",
	       whole(t.inuse_objects));
	metric(o, "heaptrace_heap_allocated_bytes_total", "counter",
	       "Bytes allocated since the process started (estimated from "
	       "samples).",
	       whole(t.alloc_bytes));
	metric(o, "heaptrace_heap_allocated_objects_total", "counter",
	       "Heap blocks allocated since the process started (estimated "
	       "from samples).",
	       whole(t.alloc_objects));
	metric(o, "process_resident_memory_bytes", "gauge",
	       "Resident memory size in bytes.", proc_rss_bytes());
	metric(o, "heaptrace_samples_total", "counter",
	       "Allocations sampled since the process started.", t.samples);
	metric(o, "heaptrace_samples_dropped_total", "counter",
	       "Samples dropped (a table full or busy).", t.dropped);
	metric(o, "heaptrace_stacks", "gauge",
	       "Distinct allocation stacks recorded.", t.stacks);
	metric(o, "heaptrace_dumps_written_total", "counter",
	       "Dump files written by this process.", dumper_dumps_written());
	metric(o, "heaptrace_threads_running", "gauge",
	       "Threads made by pthread_create running now (the main thread "
	       "and heaptrace's own not counted).",
	       th.live);
	metric(o, "heaptrace_threads_unjoined", "gauge",
	       "Threads that exited but were neither joined nor detached.",
	       th.unjoined);
	metric(o, "heaptrace_tracer_memory_bytes", "gauge",
	       "Resident memory of heaptrace's own tables.", t.tracer_bytes);
	metric(o, "heaptrace_sample_rate_bytes", "gauge",
	       "Mean bytes between samples (HEAPTRACE_RATE).", ht_config.rate);
}
