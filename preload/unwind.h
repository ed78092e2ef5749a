/* Stack capture for the slow path. */
#ifndef HEAPTRACE_UNWIND_H
#define HEAPTRACE_UNWIND_H

#include <stdint.h>

/* Loads the unwinder privately and learns the tracer's own code range.
 * Never fails: without libunwind, glibc's backtrace() is used. */
void unwind_init(void);

/* Return addresses of the caller of the allocation function and up, at
 * most max of them, the tracer's own frames dropped; -1 when no stack can
 * be taken now (a fork is starting: see forkguard.c). */
int unwind_capture(uintptr_t *frames, int max);

/* Which unwinder is in use, for the dump header. */
const char *unwind_name(void);

#endif
