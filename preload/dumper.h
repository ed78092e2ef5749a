/* When dumps are written: on the dump signal, every interval, at exit and
 * on request through heaptrace_dump(). */
#ifndef HEAPTRACE_DUMPER_H
#define HEAPTRACE_DUMPER_H

/* Installs the signal handler, the exit and fork hooks and starts the
 * dumper thread. */
void dumper_start(void);

#endif
