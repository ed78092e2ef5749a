/* gzip of dump files (HEAPTRACE_COMPRESS), as an outbuf filter. */
#ifndef HEAPTRACE_GZOUT_H
#define HEAPTRACE_GZOUT_H

#include <stddef.h>

/* Under the dump lock: begins a gzip stream. 0 or an errno value. */
int gzout_start(void);

/* The outbuf filter: compresses n bytes, writing what is ready to fd. */
int gzout_write(int fd, const char *p, size_t n);

/* Ends the stream (the rest of the data and the gzip trailer) on fd. */
int gzout_finish(int fd);

#endif
