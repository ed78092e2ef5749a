/* Which of this process's dump files stay on disk (HEAPTRACE_KEEP). */
#ifndef HEAPTRACE_RETENTION_H
#define HEAPTRACE_RETENTION_H

/* Records that dump seq was written (where dumpdir_written says); removes
 * one older file of this process when more than HEAPTRACE_KEEP would
 * remain. Under the dump lock, right after the dump. */
void retention_add(unsigned seq);

/* Fork hook (lifecycle.h), under the dump lock the dumper holds across
 * fork: the child's files are its own, none yet. */
void retention_postfork_child(void);

/* Removes temporary files left in the directory the next dump goes to by
 * writers of our euid that were killed mid-dump (their process no longer
 * exists); regular files only, never another user's. */
void retention_sweep_stale(void);

#endif
