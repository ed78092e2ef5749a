/* See pages.h. The threads page is the `threads` verb's table (tools/
 * heaptrace_lib/threads.py) from the registry itself, frames as return
 * addresses. */
#include "pages.h"

#include <stdint.h>
#include <unistd.h>

#include "outbuf.h"
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
	struct outbuf *o;
	uint64_t live, unjoined;
	int rows;
};

static void pad(struct outbuf *o, uint64_t v, int width)
{
	int digits = 1;
	for (uint64_t x = v; x >= 10; x /= 10)
		digits++;
	for (; digits < width; digits++)
		out_str(o, " ");
	out_u64(o, v);
}

static void sum(void *arg, uint32_t stack, uint64_t live, uint64_t unjoined)
{
	struct page *p = arg;
	(void)stack;
	p->live += live;
	p->unjoined += unjoined;
}

static void row(void *arg, uint32_t stack, uint64_t live, uint64_t unjoined)
{
	struct page *p = arg;
	struct outbuf *o = p->o;
	if (!p->rows++)
		out_str(o, "    live  unjoined  created at\n");
	pad(o, live, 8);
	out_str(o, " ");
	pad(o, unjoined, 9);
	out_str(o, " ");
	const struct stack_rec *r = stack ? stacktab_rec(&ht_stacks, stack) : NULL;
	if (!r || !r->nframes) {
		out_str(o, " (no stack)\n");
		return;
	}
	for (uint32_t i = 0; i < r->nframes; i++) {
		if (i)
			out_str(o, "                   ");
		out_frames(o, &r->frames[i], 1);
		out_str(o, "\n");
	}
}

void pages_threads(struct outbuf *o)
{
	struct page p = {o, 0, 0, 0};
	threads_each(sum, &p);
	out_str(o, "Threads: ");
	out_u64(o, p.live);
	out_str(o, " running, ");
	out_u64(o, p.unjoined);
	out_str(o, " exited but not joined or detached (the main thread and "
		   "heaptrace's own not counted)\n");
	threads_each(row, &p);
}
