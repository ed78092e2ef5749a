/* The thread registry: which pthread_create call stacks made the threads
 * that are running now, and the ones that exited but were never joined or
 * detached (their stacks are still held). */
#ifndef HEAPTRACE_THREADS_H
#define HEAPTRACE_THREADS_H

struct outbuf;

/* Writes the `# threads:` and `# threads_total:` lines of a dump. */
void threads_put(struct outbuf *o);

/* Fork hooks (lifecycle.h): the registry's lock (which intalloc.c's
 * callers share) is held across fork; the child keeps only the forking
 * thread. */
void threads_prefork(void);
void threads_postfork_parent(void);
void threads_postfork_child(void);

#endif
