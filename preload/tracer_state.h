/* Whether the tracer samples: off until started, on, or failed for good
 * (with the reason, which every later dump records). On its own so that
 * the sampler, the thread registry and the dump writer can read it without
 * depending on the tracer that records samples. */
#ifndef HEAPTRACE_TRACER_STATE_H
#define HEAPTRACE_TRACER_STATE_H

enum tracer_state { TRACER_OFF, TRACER_STARTING, TRACER_ON, TRACER_FAILED };

int tracer_state(void);

/* OFF -> STARTING; 0 when the tracer was already started. */
int tracer_begin(void);

/* STARTING -> ON, unless it failed meanwhile. */
void tracer_on(void);

/* Stops sampling for good, saying why once; the next dump records it. */
void tracer_fail(const char *why);
const char *tracer_error(void);

#endif
