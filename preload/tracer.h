/* The tracer's start and the slow path that records samples. */
#ifndef HEAPTRACE_TRACER_H
#define HEAPTRACE_TRACER_H

#include <stddef.h>
#include <stdint.h>

#include "tracer_state.h"

/* Maps the tables and readies the frame walker (unwind_init(); safe
 * inside a malloc call): 0, and sampling may be turned on (tracer_on()),
 * or -1, and it has failed with the reason (tracer_state.h). Once, after
 * config_load(). */
int tracer_init(void);

/* Records a sampled block (nothing if p is NULL). errno is preserved. */
void tracer_record_alloc(void *p, size_t n);

/* Called for a pointer the live map's filter flagged: forgets it if it is
 * a live sample. Returns 1 if p is from the bootstrap buffer, which must
 * not reach the real free. */
int tracer_record_free(void *p);

/* realloc support: realloc takes p's record out of the live map first
 * (tracer_take: 1 and its entry in *s if p was a live sample); when the
 * real realloc fails and p is still the program's, tracer_reattach puts
 * it back. */
struct live_sample;
int tracer_take(void *p, struct live_sample *s);
void tracer_reattach(void *p, const struct live_sample *s);

/* Time since tracing started, in ticks of 1/TRACER_TICKS_PER_S second,
 * for allocation ages: fine enough for 1-second age buckets, and 32 bits
 * last over eight years. */
#define TRACER_TICKS_PER_S 16
uint32_t tracer_now_ticks(void);

/* CLOCK_REALTIME when tracing started in this process, in ns. */
uint64_t tracer_start_unix_ns(void);

/* Fork hook (lifecycle.h): the child's clock starts at the fork. */
void tracer_postfork_child(void);

#endif
