/* Each thread's buffer for the return addresses of the stack it is
 * capturing, in heaptrace's own memory: on the program's stack it would
 * take 2 KiB at HEAPTRACE_MAX_FRAMES=256 on every sample, more than a
 * small thread stack can spare. A thread uses its buffer only with the
 * guard raised (thread_state.h), so a signal handler that allocates
 * meanwhile is untraced and never reuses it. */
#ifndef HEAPTRACE_FRAMEBUF_H
#define HEAPTRACE_FRAMEBUF_H

#include <stdint.h>

/* Once, before the first capture: every buffer holds words entries. */
void framebuf_init(unsigned words);

/* This thread's buffer, claimed on first use and given back when the
 * thread exits; NULL when no memory can be had. */
uintptr_t *framebuf_get(void);

/* Fork hook (lifecycle.h): the buffers of the threads the child does not
 * have are free again. */
void framebuf_postfork_child(void);

#endif
