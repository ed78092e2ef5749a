/* The inputs of `heaptrace rss`, written into each dump. /proc/self/smaps
 * is read through a buffer on the stack, a line at a time, so that a
 * process with thousands of mappings costs no memory of the program's;
 * only mappings with resident pages are written.
 *
 * The allocator's statistics come from whichever allocator is the real
 * one: jemalloc's mallctl ("stats.*", after an "epoch" refresh) and
 * tcmalloc's MallocExtension_GetNumericProperty are looked for with dlsym
 * first, since under either of them glibc's mallinfo2 still exists and
 * would describe glibc's idle heap. These take the allocator's own locks:
 * they run where dumps run, never in a signal handler. */
#include "rss.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "outbuf.h"

struct reader {
	int fd;
	char buf[16384];
	size_t len, pos;
};

/* The next line (without its newline) or NULL at the end; lines longer
 * than the buffer are cut. */
static char *next_line(struct reader *r)
{
	for (;;) {
		char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
		if (nl) {
			char *line = r->buf + r->pos;
			*nl = '\0';
			r->pos = (size_t)(nl - r->buf) + 1;
			return line;
		}
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
		if (r->len == sizeof(r->buf) - 1) { /* overlong: cut it */
			r->buf[r->len] = '\0';
			r->len = 0;
			return r->buf;
		}
		ssize_t n;
		do
			n = read(r->fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len);
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			if (!r->len)
				return NULL;
			r->buf[r->len] = '\0';
			r->len = 0;
			return r->buf;
		}
		r->len += (size_t)n;
	}
}

/* "Rss:      1616 kB" -> bytes. */
static uint64_t kb_value(const char *s)
{
	uint64_t v = 0;
	while (*s == ' ')
		s++;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	return v * 1024;
}

/* " key=v" */
static void kv(struct outbuf *o, const char *key, uint64_t v)
{
	out_str(o, " ");
	out_str(o, key);
	out_str(o, "=");
	out_u64(o, v);
}

static void put_rollup(struct outbuf *o)
{
	static const char *const keys[] = {"Rss", "Pss", "Shared_Clean",
					   "Shared_Dirty", "Private_Clean",
					   "Private_Dirty", "Anonymous", "Swap"};
	struct reader r = {.fd = open("/proc/self/smaps_rollup",
				      O_RDONLY | O_CLOEXEC)};
	if (r.fd < 0)
		return;
	out_str(o, "# smaps_rollup:");
	char *line;
	while ((line = next_line(&r))) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(line, keys[i]) == 0)
				kv(o, line, kb_value(colon + 1));
	}
	out_str(o, "\n");
	close(r.fd);
}

/* A mapping's header line: "start-end perms offset dev inode   name". */
struct mapping {
	char range[48], perms[8], name[4096];
	uint64_t rss, anon;
	int open;
};

static void put_mapping(struct outbuf *o, const struct mapping *m)
{
	if (!m->open || !m->rss)
		return;
	out_str(o, "# smaps: ");
	out_str(o, m->range);
	out_str(o, " ");
	out_str(o, m->perms);
	out_field_u64(o, m->rss);
	out_field_u64(o, m->anon);
	out_str(o, " ");
	out_str(o, m->name[0] ? m->name : "-");
	out_str(o, "\n");
}

/* The first n bytes of s, cut to fit, into out. */
static void copy_word(char *out, size_t size, const char *s, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

static void start_mapping(struct mapping *m, const char *line)
{
	const char *p = line;
	size_t n = strcspn(p, " ");
	m->open = 1;
	m->rss = m->anon = 0;
	copy_word(m->range, sizeof(m->range), p, n);
	p += n + (p[n] == ' ');
	n = strcspn(p, " ");
	copy_word(m->perms, sizeof(m->perms), p, n);
	for (int field = 0; field < 4 && *p; field++) { /* to the name */
		p += strcspn(p, " ");
		p += strspn(p, " ");
	}
	ht_snprintf(m->name, sizeof(m->name), "%s", p);
}

static void put_smaps(struct outbuf *o)
{
	struct reader r = {.fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC)};
	struct mapping m = {.open = 0};
	if (r.fd < 0)
		return;
	char *line;
	while ((line = next_line(&r))) {
		/* A header's first word is "start-end"; a field's is "Key:". */
		size_t word = strcspn(line, " ");
		const char *dash = memchr(line, '-', word);
		if (dash && !memchr(line, ':', word)) {
			put_mapping(o, &m);
			start_mapping(&m, line);
		} else if (strncmp(line, "Rss:", 4) == 0) {
			m.rss = kb_value(line + 4);
		} else if (strncmp(line, "Anonymous:", 10) == 0) {
			m.anon = kb_value(line + 10);
		}
	}
	put_mapping(o, &m);
	close(r.fd);
}

static void put_allocator(struct outbuf *o)
{
	int (*mallctl)(const char *, void *, size_t *, void *, size_t);
	int (*tc)(const char *, size_t *);
	void *f = dlsym(RTLD_DEFAULT, "mallctl");
	memcpy(&mallctl, &f, sizeof(f));
	f = dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty");
	memcpy(&tc, &f, sizeof(f));
	if (mallctl) {
		static const char *const keys[] = {"stats.allocated", "stats.active",
						   "stats.resident", "stats.mapped",
						   "stats.retained"};
		uint64_t epoch = 1;
		size_t len = sizeof(epoch);
		mallctl("epoch", &epoch, &len, &epoch, len);
		out_str(o, "# allocator: jemalloc");
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			size_t v = 0;
			len = sizeof(v);
			if (mallctl(keys[i], &v, &len, NULL, 0) == 0)
				kv(o, keys[i] + 6, v);
		}
	} else if (tc) {
		static const char *const keys[] = {
		    "generic.current_allocated_bytes", "generic.heap_size",
		    "tcmalloc.pageheap_free_bytes",
		    "tcmalloc.pageheap_unmapped_bytes"};
		out_str(o, "# allocator: tcmalloc");
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			size_t v = 0;
			if (tc(keys[i], &v))
				kv(o, strchr(keys[i], '.') + 1, v);
		}
	} else {
		struct mallinfo2 mi = mallinfo2();
		out_str(o, "# allocator: glibc");
		kv(o, "arena", mi.arena);
		kv(o, "mmap", mi.hblkhd);
		kv(o, "inuse", mi.uordblks + mi.hblkhd);
		kv(o, "free", mi.fordblks);
		kv(o, "releasable", mi.keepcost);
	}
	out_str(o, "\n");
}

void rss_put(struct outbuf *o)
{
	put_rollup(o);
	put_allocator(o);
	put_smaps(o);
}
