/* heaptrace's own threads (the dumper, the server): started with every
 * signal blocked, so that the program's signals are never delivered to
 * them, and outside the thread registry, so that they are never listed
 * among the program's threads and a forked child's start takes no lock. */
#ifndef HEAPTRACE_OWNTHREAD_H
#define HEAPTRACE_OWNTHREAD_H

/* Starts fn detached under name; 0, or the error pthread_create gave. */
int ownthread_start(void *(*fn)(void *), const char *name);

#endif
