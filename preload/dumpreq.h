/* Requests for a dump, made where no dump can be written (a signal
 * handler) and taken by the dumper thread: a flag per kind and a
 * semaphore that wakes the thread. On its own so that the modules that ask
 * (dumpsig.c) need not depend on the dumper, which depends on the dump
 * writer, which reads their state. */
#ifndef HEAPTRACE_DUMPREQ_H
#define HEAPTRACE_DUMPREQ_H

#include <stdint.h>

enum dumpreq {
	DUMPREQ_SIGNAL,      /* the dump signal arrived */
	DUMPREQ_SIGNAL_LOST, /* the program took the dump signal */
	DUMPREQ_TRIGGER,     /* triggers.h may have a dump due */
	DUMPREQ_KINDS
};

/* Before the first post, and again in a forked child (nothing pending). */
void dumpreq_init(void);

/* Async-signal-safe: raises the flag and wakes the waiter. */
void dumpreq_post(enum dumpreq why);

/* 1 if a request of that kind was pending; it no longer is. */
int dumpreq_take(enum dumpreq why);
int dumpreq_pending(enum dumpreq why);

/* Waits for a post, or until the monotonic time deadline_ms (0 = none);
 * posts that came meanwhile are folded into this one wake. */
void dumpreq_wait(uint64_t deadline_ms);

#endif
