/* The text pages of /debug/pprof/: the index, and the threads by
 * creation stack. */
#ifndef HEAPTRACE_PAGES_H
#define HEAPTRACE_PAGES_H

struct outbuf;

void pages_index(struct outbuf *o);
void pages_threads(struct outbuf *o);

#endif
