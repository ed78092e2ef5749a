/* When dumps are written: on the dump signal, every interval, at exit and
 * on request through heaptrace_dump(). */
#ifndef HEAPTRACE_DUMPER_H
#define HEAPTRACE_DUMPER_H

/* Installs the signal handler, the exit and fork hooks and starts the
 * dumper thread. */
void dumper_start(void);

enum dumper_wake_reason {
	DUMPER_WAKE_SIGNAL,
	DUMPER_WAKE_SIGNAL_LOST,
	DUMPER_WAKE_TRIGGER, /* triggers.h has something due */
};

/* Asks the dumper thread for a dump; async-signal-safe. */
void dumper_wake(enum dumper_wake_reason why);

/* The dump lock, for other readers of the tables that take a snapshot
 * (snapshot.h): it serialises them with dumps. */
void dumper_lock(void);
void dumper_unlock(void);

#endif
