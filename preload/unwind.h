/* Stack capture for the slow path. */
#ifndef HEAPTRACE_UNWIND_H
#define HEAPTRACE_UNWIND_H

#include <stdint.h>

/* Learns the tracer's own code range and readies the frame walker: what
 * is safe inside a malloc call, so that stacks are taken from the first
 * allocation on (lifecycle.c). */
void unwind_init(void);

/* Whether the frame walker is on (x86-64, HEAPTRACE_UNWIND is not
 * libunwind), after unwind_init(): without it no stack can be taken
 * before unwind_load(). */
int unwind_walker_on(void);

/* Loads libunwind privately, from the constructor (a dlopen is not safe
 * inside malloc). Never fails: without libunwind, glibc's backtrace() is
 * used. */
void unwind_load(void);

/* The most frames of the tracer's own a capture can start with; a
 * capture buffer (framebuf.h) holds max_frames plus these. */
#define UNWIND_OWN_FRAMES 16

/* Return addresses of the caller of the allocation function and up, at
 * most max of them, the tracer's own frames dropped, in this thread's
 * buffer (framebuf.h), which *frames is set to; -1 when no stack can be
 * taken now (a fork is starting: see forkguard.c; or no memory for the
 * buffer), UNWIND_NOT_YET when the frame walker could not finish it and
 * libunwind is not loaded yet. With the guard raised. */
#define UNWIND_NOT_YET (-2)
int unwind_capture(const uintptr_t **frames, int max);

/* Makes the function at fn (its start, as dladdr knows it) one whose
 * frames are dropped from the top of a capture: an allocator's entry point
 * that calls malloc. 0 on success. */
int unwind_skip_function(const void *fn);

/* Called at the start of each thread with an address above all of its
 * frames: the walker reads no stack above it. Threads without one (the
 * main thread is given __libc_stack_end) are unwound by libunwind. */
void unwind_thread_start(uintptr_t stack_hi);

/* Stacks the frame walker could not finish and libunwind (or glibc's
 * backtrace) took, for the dump header. */
uint64_t unwind_handed_over(void);

/* Which unwinder is in use, for the dump header. */
const char *unwind_name(void);

#endif
