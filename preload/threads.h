/* The thread registry: which pthread_create call stacks made the threads
 * that are running now, and the ones that exited but were never joined or
 * detached (their stacks are still held). */
#ifndef HEAPTRACE_THREADS_H
#define HEAPTRACE_THREADS_H

#include <stdint.h>

struct outbuf;

/* The threads one pthread_create call stack made, and the memory their
 * stacks hold: the size of each stack and of its guard, as the attribute
 * given (or the default, which RLIMIT_STACK sets) asked for, over running
 * and unjoined threads alike (an unjoined thread's stack stays mapped).
 * Stacks the program supplied (pthread_attr_setstack) are its own memory
 * and not counted. */
struct thread_group {
	uint32_t stack; /* creation stack (a stacktab id), 0 = unknown */
	uint64_t live, unjoined;
	uint64_t stack_bytes, guard_bytes;
};

/* Calls fn once per creation stack. fn runs with no lock of the registry
 * held. */
void threads_each(void (*fn)(void *arg, const struct thread_group *g),
		  void *arg);

/* Writes the `# threads:` and `# threads_total:` lines of a dump. */
void threads_put(struct outbuf *o);

/* Fork hooks (lifecycle.h): the registry's lock (which intalloc.c's
 * callers share) is held across fork; the child keeps only the forking
 * thread. */
void threads_prefork(void);
void threads_postfork_parent(void);
void threads_postfork_child(void);

#endif
