/* When dumps are written: on the dump signal, every interval, at exit and
 * on request through heaptrace_dump(). */
#ifndef HEAPTRACE_DUMPER_H
#define HEAPTRACE_DUMPER_H

#include <stddef.h>

/* Installs the signal handler, the exit and fork hooks and starts the
 * dumper thread. */
void dumper_start(void);

enum dumper_wake_reason { DUMPER_WAKE_SIGNAL, DUMPER_WAKE_SIGNAL_LOST };

/* Asks the dumper thread for a dump; async-signal-safe. */
void dumper_wake(enum dumper_wake_reason why);

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
