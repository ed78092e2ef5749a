/* See pages.h. The threads page gives what the `threads` verb shows
 * (tools/heaptrace_lib/threads.py), from the registry itself: the totals,
 * then each creation stack with its counts and its frames named from the
 * process's own symbol tables. */
#include "pages.h"

#include <stdint.h>
#include <unistd.h>

#include "outbuf.h"
#include "profile.h"
#include "stacktab.h"
#include "threads.h"

void pages_index(struct outbuf *o)
{
	out_str(o, "<html><head><title>/debug/pprof/</title></head><body>\n"
		   "<p>/debug/pprof/ of process ");
	out_u64(o, (uint64_t)getpid());
	out_str(o, ", served by heaptrace</p>\n<p>Profiles:</p>\n<table>\n"
		   "<tr><td><a href=\"allocs?debug=1\">allocs</a></td><td>"
		   "every allocation since the process started, by stack "
		   "(<a href=\"allocs\">profile.proto</a>)</td></tr>\n"
		   "<tr><td><a href=\"heap?debug=1\">heap</a></td><td>the "
		   "heap in use now, by stack (<a href=\"heap\">profile.proto"
		   "</a>; ?seconds=N: what was allocated over N seconds)</td>"
		   "</tr>\n<tr><td><a href=\"threads\">threads</a></td><td>"
		   "threads by the stack that created them</td></tr>\n"
		   "<tr><td><a href=\"symbol\">symbol</a></td><td>pprof's "
		   "symbolz: names for addresses</td></tr>\n<tr><td><a "
		   "href=\"/metrics\">/metrics</a></td><td>totals for "
		   "Prometheus</td></tr>\n</table>\n<p><code>go tool pprof "
		   "http://HOST:PORT/debug/pprof/heap</code></p>\n"
		   "</body></html>\n");
}

struct page {
	uint64_t live, unjoined;
};

static void sum(void *arg, const struct thread_group *g)
{
	struct page *p = arg;
	p->live += g->live;
	p->unjoined += g->unjoined;
}

/* One creation stack: its counts, then its frames named as the ?debug=1
 * page names them. */
static void group(void *arg, const struct thread_group *g)
{
	struct outbuf *o = arg;
	const struct stack_rec *r =
	    g->stack ? stacktab_rec(&ht_stacks, g->stack) : NULL;
	out_str(o, "\n");
	out_u64(o, g->live);
	out_str(o, " running, ");
	out_u64(o, g->unjoined);
	out_str(o, " unjoined, created at:");
	if (!r || !r->nframes)
		out_str(o, " (no stack)");
	out_str(o, "\n");
	for (uint32_t i = 0; r && i < r->nframes; i++)
		profile_put_frame(o, r->frames[i]);
}

static void groups(void *arg, struct outbuf *o)
{
	(void)arg;
	threads_each(group, o);
}

void pages_threads(struct outbuf *o)
{
	struct page p = {0, 0};
	threads_each(sum, &p);
	out_str(o, "Threads: ");
	out_u64(o, p.live);
	out_str(o, " running, ");
	out_u64(o, p.unjoined);
	out_str(o, " exited but not joined or detached (the main thread and "
		   "heaptrace's own not counted)\n");
	profile_with_names(groups, NULL, o);
}
