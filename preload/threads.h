/* The thread registry: which pthread_create call stacks made the threads
 * that are running now, and the ones that exited but were never joined or
 * detached (their stacks are still held). */
#ifndef HEAPTRACE_THREADS_H
#define HEAPTRACE_THREADS_H

struct outbuf;

/* Writes the `# threads:` and `# threads_total:` lines of a dump. */
void threads_put(struct outbuf *o);

/* In a forked child: only the forking thread survives. */
void threads_forked(void);

#endif
