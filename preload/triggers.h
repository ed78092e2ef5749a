/* Dumps by amount: a new peak of the heap in use (HEAPTRACE_PEAK_STEP), an
 * RSS limit crossed (HEAPTRACE_RSS_LIMIT), every N bytes allocated
 * (HEAPTRACE_ALLOC_STEP). */
#ifndef HEAPTRACE_TRIGGERS_H
#define HEAPTRACE_TRIGGERS_H

#include <stdint.h>

/* The sampled path: a recorded sample standing for bytes (live: it is in
 * the live map, so it counts as in use), and the free of one. May post
 * the dumper's semaphore; never dumps. */
void triggers_sampled(int64_t bytes, int live);
void triggers_freed(int64_t bytes);

/* The estimate of the heap in use, in bytes (sampled: the same estimate
 * the dump's in-use totals make). */
int64_t triggers_inuse(void);

enum {
	TRIGGER_PEAK = 1,  /* write the peak dump (dump.h: DUMP_SEQ_PEAK) */
	TRIGGER_RSS = 2,   /* the RSS limit was crossed upwards */
	TRIGGER_ALLOC = 4, /* another HEAPTRACE_ALLOC_STEP bytes allocated */
};

/* On the dumper thread after every wake: the dumps now due, and in
 * *deadline_ms the monotonic time by which it wants to be woken again
 * (0 = only when posted). */
unsigned triggers_due(uint64_t now_ms, uint64_t *deadline_ms);

/* After the peak dump was written (or failed): its heap is the new mark. */
void triggers_peak_done(uint64_t now_ms);

/* At start, and in a forked child (its peaks and limits are its own):
 * arms the marks afresh. */
void triggers_start(void);

#endif
