/* The directory dumps go to: the configured one (HEAPTRACE_DIR, else the
 * working directory or /tmp), or, once that refuses the process's current
 * credentials, a private per-uid fallback <TMPDIR or /tmp>/heaptrace-<euid>. */
#ifndef HEAPTRACE_DUMPDIR_H
#define HEAPTRACE_DUMPDIR_H

#include <stddef.h>
#include <stdint.h>

/* Where a dump went: 0 is the configured directory, uid + 1 the fallback
 * of that uid. Small enough to keep one per retained dump. */
typedef uint32_t dumpdir_place;

/* The directory the next dump goes to, copied into buf (4200 bytes hold
 * any). Any thread may call it (the control socket reports it): it reads
 * no state that a dump leaves half-written. */
void dumpdir_next(char *buf, size_t size);

/* The path of a place, into buf. */
void dumpdir_path(dumpdir_place place, char *buf, size_t size);

/* Under the dump lock, from here to dumpdir_close. Opens the directory
 * this dump goes to and returns its descriptor (or -errno), its place in
 * *place. Each dump opens it afresh: a daemon that closes every descriptor
 * cannot take it away, and the directory checked is the one written in. */
int dumpdir_open(dumpdir_place *place);

/* Creating a file in dirfd (from dumpdir_open) failed with err; closes
 * dirfd. When err says the configured directory refuses these credentials
 * (EACCES, EPERM), this dump and later ones move to the fallback: its
 * descriptor is returned and *place updated. Otherwise, or when the
 * fallback is unusable, -errno. */
int dumpdir_refused(int dirfd, int err, dumpdir_place *place);

/* Under the dump lock: a dump was written whole in place. One line on
 * stderr says so when the place differs from the last one said. */
void dumpdir_wrote(dumpdir_place place);

/* Under the dump lock: the place of the last dump written. */
dumpdir_place dumpdir_written(void);

#endif
