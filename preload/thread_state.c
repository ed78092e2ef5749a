/* The storage of the per-thread state (thread_state.h), and the one
 * question about it heaptrace answers to others. */
#include "thread_state.h"

#include "export.h"

__thread struct ht_thread ht_thread;

/* 1 while the calling thread is inside heaptrace (its guard is raised):
 * an allocation it makes now is heaptrace's own, which a tool stacked
 * under heaptrace (tests/progs/count/count.c) leaves out of the
 * program's. */
HT_EXPORT int heaptrace_inside(void)
{
	return ht_thread.guard;
}
