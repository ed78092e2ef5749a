/* See outbuf.h. Formatting goes straight into the buffer; snprintf would
 * cost several times more per number at the sizes dumps reach. */
#include "outbuf.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>


void outbuf_start(struct outbuf *o, int fd, char *buf, size_t cap)
{
	o->fd = fd;
	o->err = 0;
	o->len = 0;
	o->cap = cap;
	o->buf = buf;
	o->filter = NULL;
}

int out_write_all(int fd, const char *p, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : ENOSPC;
		done += (size_t)n;
	}
	return 0;
}

void out_flush(struct outbuf *o)
{
	if (o->len && !o->err)
		o->err = o->filter ? o->filter(o->fd, o->buf, o->len)
				   : out_write_all(o->fd, o->buf, o->len);
	o->len = 0;
}

void out_bytes(struct outbuf *o, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		if (o->len == o->cap)
			out_flush(o);
		size_t k = o->cap - o->len < n ? o->cap - o->len : n;
		memcpy(o->buf + o->len, s, k);
		o->len += k;
		s += k;
		n -= k;
	}
}

static char *room(struct outbuf *o, size_t n)
{
	if (o->cap - o->len < n)
		out_flush(o);
	return o->buf + o->len;
}

void out_u64(struct outbuf *o, uint64_t v)
{
	char tmp[20];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	char *p = room(o, 20);
	for (int i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	o->len += (size_t)n;
}

/* Writes v in lowercase hex, no prefix, at p; returns the digit count. */
static size_t put_hex(char *p, uint64_t v)
{
	size_t digits = (size_t)(67 - __builtin_clzll(v | 1)) / 4;
	for (size_t i = digits; i > 0; i--, v >>= 4)
		p[i - 1] = "0123456789abcdef"[v & 15];
	return digits;
}

void out_hex(struct outbuf *o, uint64_t v)
{
	char *p = room(o, 16);
	o->len += put_hex(p, v);
}

/* The sample lines' stacks are most of a dump: one bounds check per frame. */
void out_frames(struct outbuf *o, const uintptr_t *pc, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		char *p = room(o, 19);
		p[0] = ' ';
		p[1] = '0';
		p[2] = 'x';
		o->len += 3 + put_hex(p + 3, pc[i]);
	}
}

void out_fixed3(struct outbuf *o, double v)
{
	if (!(v == v) || v > 1e18 || v < -1e18) {
		out_str(o, "0.000");
		return;
	}
	if (v < 0) {
		out_str(o, "-");
		v = -v;
	}
	uint64_t milli = (uint64_t)llround(v * 1000.0);
	out_u64(o, milli / 1000);
	char frac[5] = {'.', (char)('0' + milli / 100 % 10),
			(char)('0' + milli / 10 % 10), (char)('0' + milli % 10), 0};
	out_str(o, frac);
}

void out_heap_counts(struct outbuf *o, uint64_t c, uint64_t b, uint64_t ac,
		     uint64_t ab)
{
	out_u64(o, c);
	out_str(o, ": ");
	out_u64(o, b);
	out_str(o, " [");
	out_u64(o, ac);
	out_str(o, ": ");
	out_u64(o, ab);
	out_str(o, "] @");
}

void out_sample_counts(struct outbuf *o, uint64_t c, uint64_t b, uint64_t ac,
		       uint64_t ab)
{
	out_heap_counts(o, b ? c : 0, b, ab ? ac : 0, ab);
}

void out_zero_byte_objects(struct outbuf *o, uint64_t c, uint64_t b,
			   uint64_t ac, uint64_t ab)
{
	if (!(c && !b) && !(ac && !ab))
		return;
	out_str(o, "# zero_byte_objects:");
	out_field_u64(o, b ? 0 : c);
	out_field_u64(o, ab ? 0 : ac);
	out_str(o, "\n");
}
