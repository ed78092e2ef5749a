/* When dumps are written: on the dump signal, every interval, at exit and
 * on request through heaptrace_dump(). */
#ifndef HEAPTRACE_DUMPER_H
#define HEAPTRACE_DUMPER_H

#include <stddef.h>

/* Sweeps stale temporaries, starts the dumper thread and installs the
 * exit dump; after dumpreq_init(). */
void dumper_start(void);

/* Fork hooks (lifecycle.h): the dump lock is held across fork; the child
 * numbers its own dumps and gets a dumper thread of its own. */
void dumper_prefork(void);
void dumper_postfork_parent(void);
void dumper_postfork_child(void);

/* A dump now, from the calling thread, for someone who waits for it (the
 * control socket): 0 and the whole file's path in path, or an errno value
 * (ECANCELED once the exit dump is written). Serialised with every other
 * dump by the dump lock. */
int dumper_request(const char *trigger, char *path, size_t size);

/* Dumps this process has written (a forked child counts its own). */
unsigned long dumper_dumps_written(void);

/* The dump lock, for other readers of the tables that take a snapshot
 * (snapshot.h): it serialises them with dumps. */
void dumper_lock(void);
void dumper_unlock(void);

#endif
