/* The thread registry: which pthread_create call stacks made the threads
 * that are running now, and the ones that exited but were never joined or
 * detached (their stacks are still held). */
#ifndef HEAPTRACE_THREADS_H
#define HEAPTRACE_THREADS_H

#include <stdint.h>

struct outbuf;

/* Calls fn once per creation stack (a stacktab id, 0 = unknown) with the
 * threads it made that run now and that exited unjoined. fn runs with no
 * lock of the registry held. */
void threads_each(void (*fn)(void *arg, uint32_t stack, uint64_t live,
			     uint64_t unjoined),
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
