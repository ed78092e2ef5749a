/* gzip of dump files (HEAPTRACE_COMPRESS) and of HTTP profiles, as an
 * outbuf filter. */
#ifndef HEAPTRACE_GZOUT_H
#define HEAPTRACE_GZOUT_H

struct outbuf;

/* One stream per kind of writer, each used by one writer at a time: dumps
 * under the dump lock, profiles under the profile lock. */
enum gzout_stream { GZOUT_DUMP, GZOUT_PROFILE, GZOUT_STREAMS };

/* Begins a gzip stream on o: what o flushes from now on is compressed and
 * then written where o wrote before. 0 or an errno value. */
int gzout_begin(enum gzout_stream which, struct outbuf *o);

/* Ends the stream (the rest of the data and the gzip trailer) and puts o
 * back as it was; a failure is left in o->err. */
void gzout_end(struct outbuf *o);

#endif
