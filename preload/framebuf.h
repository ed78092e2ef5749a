/* Each thread's memory for capturing its stack, in heaptrace's own
 * memory: a buffer for the return addresses (on the program's stack it
 * would take 2 KiB at HEAPTRACE_MAX_FRAMES=256 on every sample, more than
 * a small thread stack can spare) and a stack for libunwind's walk
 * (altstack.h), which would take 5 KiB more. A thread uses them only with
 * the guard raised (thread_state.h), so a signal handler that allocates
 * meanwhile is untraced and never reuses them. */
#ifndef HEAPTRACE_FRAMEBUF_H
#define HEAPTRACE_FRAMEBUF_H

#include <stdint.h>

/* Once, before the first capture: every buffer holds words entries. */
void framebuf_init(unsigned words);

/* This thread's buffer, claimed on first use and given back when the
 * thread exits; NULL when no memory can be had. */
uintptr_t *framebuf_get(void);

/* The top of this thread's walk stack of ALTSTACK_BYTES, for
 * altstack_call(), once framebuf_get() has succeeded; NULL when its guard
 * page cannot be set up. */
void *framebuf_stack(void);

/* Fork hook (lifecycle.h): the buffers of the threads the child does not
 * have are free again. */
void framebuf_postfork_child(void);

#endif
