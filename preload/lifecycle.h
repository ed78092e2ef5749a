/* The process's lifecycle has one owner: lifecycle.c brings the modules up
 * in order (the tracing core from the first allocation call, the rest from
 * the library's constructor), and is the only place that registers fork
 * handlers (one pthread_atfork triple).
 *
 * The fork hook convention (jemalloc's). A module that owns a lock, or
 * state that belongs to one process, offers the hooks it needs, named
 * after itself:
 *
 *   <module>_prefork()          take every lock the module owns (fork then
 *                               waits for whoever holds one);
 *   <module>_postfork_parent()  release them;
 *   <module>_postfork_child()   release (or reset) them, and reset all of
 *                               the module's per-process state: in the
 *                               child only the forking thread exists, so
 *                               nothing another thread was doing carries
 *                               on there.
 *
 * Hooks run with the guard raised (thread_state.h), so allocations they
 * make are untraced. They must not take another module's lock except as
 * the order below allows, and a child hook must not wait for anything
 * (it runs in a single-threaded child). A lock that the program's own
 * threads take (inside an interposed call, a dump from exit or the API)
 * is a fork_lock (forklock.h): a fork from a signal handler that
 * interrupted such a thread inside it must not wait for itself. To add a
 * module, call its hooks from lifecycle.c at the place the order says,
 * and list it there.
 *
 * The order. Prefork takes locks outer first, in the order they nest
 * when held together; the parent and child hooks run in reverse:
 *
 *   0. server     the server's descriptor record (a leaf: it is held
 *                 only around making and closing a descriptor)
 *   1. profile    profile lock (a profile takes the dump lock inside it)
 *   2. dumper     dump lock (a dump takes the threads lock inside it)
 *   3. threads    thread registry lock, which intalloc.c's callers share
 *   4. forkguard  stops the tracer's walks of the loaded objects last,
 *                 since a dump in progress (2) walks them
 *
 * After those, the child's per-process state, in any order: tracer (its
 * clock), framebuf (the other threads' capture buffers), retention (its
 * dump files), dumpsig (who owns the signal), dumpreq (no request
 * pending: dumpreq_init again). The dumper's and the server's child hooks
 * run last of all: they start the child's dumper and server threads,
 * which may dump at once, when everything else is reset. */
#ifndef HEAPTRACE_LIFECYCLE_H
#define HEAPTRACE_LIFECYCLE_H

/* The fork hooks of the whole tracer, registered with pthread_atfork by
 * the constructor; exposed for tests and for nothing else. */
void lifecycle_prefork(void);
void lifecycle_postfork_parent(void);
void lifecycle_postfork_child(void);

#endif
