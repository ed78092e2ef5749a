/* Which of this process's dump files stay on disk (HEAPTRACE_KEEP). */
#ifndef HEAPTRACE_RETENTION_H
#define HEAPTRACE_RETENTION_H

/* Records that dump seq was written; removes one older file of this
 * process when more than HEAPTRACE_KEEP would remain. Under the dump lock. */
void retention_add(unsigned seq);

/* In a forked child: its files are its own, none yet. */
void retention_forked(void);

/* Removes temporary files left in the dump directory by writers that were
 * killed mid-dump (their process no longer exists). */
void retention_sweep_stale(void);

#endif
