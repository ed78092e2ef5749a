/* See http.h. Requests are parsed where they were received, in the
 * connection's fixed buffer; nothing is allocated per request. An answer
 * is written whole into the tracer's memory first (the profiles write
 * under the profile lock, which a fork of the program waits for: a client
 * that reads slowly must not hold it), then sent with the socket made
 * blocking with a send timeout, and a time limit on the whole: a client
 * that stops reading loses its answer, it cannot hold the server thread.
 * Errors before an answer starts are short, sent without waiting. */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "outbuf.h"
#include "pages.h"
#include "profile.h"

#define TARGET_MAX 2048
#define TOKEN_MAX 4096
#define ANSWER_MS 10000   /* the whole answer */
#define SEND_WAIT_MS 1000 /* one send */
#define SECONDS_MAX 3600
#define OUT_BUFFER (64 << 10)
#define ANSWER_MAX (32 << 20) /* mapped once, touched as used */
#define ANSWER_KEEP (1 << 20) /* resident after a larger answer */

static char token[TOKEN_MAX + 1];
static size_t token_len;
static char *out_mem, *answer;
static size_t answer_len;
static uint64_t answer_deadline_ms;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int http_token_load(void)
{
	const char *path = ht_config.http_token_file;
	if (!path[0])
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t n = fd < 0 ? -1 : read(fd, token, TOKEN_MAX + 1);
	int err = errno;
	if (fd >= 0)
		close(fd);
	while (n > 0 && (token[n - 1] == '\n' || token[n - 1] == '\r' ||
			 token[n - 1] == ' ' || token[n - 1] == '\t'))
		n--;
	const char *why = n < 0 ? strerror(err)
			  : n == 0 ? "it is empty"
			  : n > TOKEN_MAX ? "it is longer than 4096 bytes"
			  : memchr(token, '\n', (size_t)n) ? "it holds more than one line"
							   : NULL;
	if (why) {
		ht_log("HEAPTRACE_HTTP_TOKEN_FILE='%s' cannot be used (%s); HTTP "
		       "is not served", path, why);
		memset(token, 0, sizeof(token));
		return -1;
	}
	token_len = (size_t)n;
	return 0;
}

/* Compares the whole length whatever the bytes, so that the time taken
 * does not tell how much of a guess was right. */
static int token_matches(const char *s, size_t n)
{
	unsigned char diff = n != token_len;
	for (size_t i = 0; i < token_len; i++)
		diff |= (unsigned char)(token[i] ^ (i < n ? s[i] : 0));
	return diff == 0;
}

static int name_is(const char *s, size_t n, const char *lower)
{
	size_t k = strlen(lower);
	if (n != k)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
		if (c != lower[i])
			return 0;
	}
	return 1;
}

static int is_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* One header line [s, s+n) without its line end. */
static int header(const char *s, size_t n, struct http_request *r,
		  size_t *body_len, int *have_len)
{
	const char *colon = memchr(s, ':', n);
	if (!colon || colon == s)
		return 400;
	for (const char *q = s; q < colon; q++)
		if (!is_token_char(*q))
			return 400;
	size_t name_len = (size_t)(colon - s);
	const char *v = colon + 1, *end = s + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	size_t vlen = (size_t)(end - v);
	if (name_is(s, name_len, "content-length")) {
		size_t len = 0;
		if (*have_len || !vlen)
			return 400;
		for (size_t i = 0; i < vlen; i++) {
			if (v[i] < '0' || v[i] > '9')
				return 400;
			len = len * 10 + (size_t)(v[i] - '0');
			if (len > HTTP_BODY_MAX)
				return 413;
		}
		*have_len = 1;
		*body_len = len;
	} else if (name_is(s, name_len, "transfer-encoding")) {
		return 501;
	} else if (name_is(s, name_len, "authorization") && token_len) {
		if (vlen > 7 && name_is(v, 7, "bearer ") &&
		    token_matches(v + 7, vlen - 7))
			r->authorized = 1;
	}
	return 0;
}

static int request_line(const char *s, size_t n, struct http_request *r)
{
	const char *sp1 = memchr(s, ' ', n);
	if (!sp1)
		return 400;
	size_t mlen = (size_t)(sp1 - s);
	if (mlen == 3 && !memcmp(s, "GET", 3))
		r->method = HTTP_GET;
	else if (mlen == 4 && !memcmp(s, "HEAD", 4))
		r->method = HTTP_HEAD;
	else if (mlen == 4 && !memcmp(s, "POST", 4))
		r->method = HTTP_POST;
	else
		return 405;
	const char *target = sp1 + 1, *end = s + n;
	const char *sp2 = memchr(target, ' ', (size_t)(end - target));
	if (!sp2)
		return 400;
	size_t tlen = (size_t)(sp2 - target);
	if (tlen > TARGET_MAX)
		return 414;
	if (!tlen || target[0] != '/')
		return 400;
	size_t vlen = (size_t)(end - sp2 - 1);
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7))
		return vlen >= 5 && !memcmp(sp2 + 1, "HTTP/", 5) ? 505 : 400;
	const char *q = memchr(target, '?', tlen);
	r->path = target;
	r->path_len = q ? (size_t)(q - target) : tlen;
	r->query = q ? q + 1 : target + tlen;
	r->query_len = q ? tlen - r->path_len - 1 : 0;
	return 0;
}

/* The head [buf, buf+len), its blank line included. */
static int parse_head(const char *buf, size_t len, struct http_request *r,
		      size_t *body_len)
{
	int have_len = 0, headers = 0;
	size_t pos = 0;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0' || ((unsigned char)buf[i] < 0x20 &&
				       buf[i] != '\r' && buf[i] != '\n' &&
				       buf[i] != '\t') ||
		    buf[i] == 0x7f)
			return 400;
	r->authorized = token_len == 0;
	while (pos < len) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = (size_t)(nl - line);
		pos += n + 1;
		if (n && line[n - 1] == '\r')
			n--;
		int err;
		if (line == buf)
			err = request_line(line, n, r);
		else if (n == 0)
			break;
		else if (line[0] == ' ' || line[0] == '\t') /* folding */
			err = 400;
		else if (++headers > HTTP_HEADERS_MAX)
			err = 431;
		else
			err = header(line, n, r, body_len, &have_len);
		if (err)
			return err;
	}
	return 0;
}

int http_parse(const char *buf, size_t len, struct http_progress *p)
{
	if (!p->total) {
		/* The head ends at the first empty line: "\n\n" or "\n\r\n". */
		size_t i = p->scanned > 2 ? p->scanned - 2 : 0, end = 0;
		for (; i < len && !end; i++) {
			if (buf[i] != '\n' || i + 1 >= len)
				continue;
			if (buf[i + 1] == '\n')
				end = i + 2;
			else if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
				end = i + 3;
		}
		p->scanned = len;
		if (!end)
			return len >= HTTP_HEAD_MAX ? 431 : 0;
		if (end > HTTP_HEAD_MAX)
			return 431;
		size_t body = 0;
		int err = parse_head(buf, end, &p->r, &body);
		if (err)
			return err;
		p->total = end + body;
		p->r.body = buf + end;
		p->r.body_len = body;
	}
	return len >= p->total ? 200 : 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

void http_reject(int fd, int status)
{
	char msg[512], body[160];
	size_t blen = ht_snprintf(body, sizeof(body), "heaptrace: %s%s\n",
				  reason(status),
				  status == 401 ? " (Authorization: Bearer TOKEN "
						  "from HEAPTRACE_HTTP_TOKEN_FILE)"
				  : status == 404 ? " (see /debug/pprof/)"
						  : "");
	size_t n = ht_snprintf(
	    msg, sizeof(msg),
	    "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s%s\r\n%s",
	    status, reason(status), blen,
	    status == 401 ? "WWW-Authenticate: Bearer realm=\"heaptrace\"\r\n" : "",
	    status == 405 ? "Allow: GET, HEAD, POST\r\n" : "", body);
	if (n >= sizeof(msg))
		n = sizeof(msg) - 1;
	send(fd, msg, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* To the socket, bounded by the answer's deadline. */
static int send_bounded(int fd, const char *p, size_t n)
{
	while (n) {
		if (now_ms() > answer_deadline_ms)
			return ETIMEDOUT;
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			continue; /* SO_SNDTIMEO ran out: check the deadline */
		if (k <= 0)
			return k < 0 ? errno : EPIPE;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* The outbuf's flushes: into the answer's memory. */
static int keep(int fd, const char *p, size_t n)
{
	(void)fd;
	if (n > ANSWER_MAX - answer_len)
		return EFBIG;
	memcpy(answer + answer_len, p, n);
	answer_len += n;
	return 0;
}

/* Starts a 200 answer: the headers in o, which keeps what it is given
 * for finish(). 0, or -1 when no memory can be had (refused with 503). */
static int begin(int fd, struct outbuf *o, const char *type, const char *extra)
{
	if ((!out_mem && !(out_mem = arena_map(OUT_BUFFER))) ||
	    (!answer && !(answer = arena_map(ANSWER_MAX)))) {
		http_reject(fd, 503);
		return -1;
	}
	answer_len = 0;
	outbuf_start(o, fd, out_mem, OUT_BUFFER);
	o->filter = keep;
	out_str(o, "HTTP/1.1 200 OK\r\nContent-Type: ");
	out_str(o, type);
	out_str(o, "\r\nCache-Control: no-store\r\nX-Content-Type-Options: "
		   "nosniff\r\nConnection: close\r\n");
	out_str(o, extra);
	out_str(o, "\r\n");
	return 0;
}

/* Sends what o kept, nothing held but the server thread. An answer that
 * did not fit (over 32 MiB) or failed to be made is cut: the client sees
 * the connection close early. */
static void finish(int fd, struct outbuf *o)
{
	out_flush(o);
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	struct timeval wait = {SEND_WAIT_MS / 1000, SEND_WAIT_MS % 1000 * 1000};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof(wait));
	answer_deadline_ms = now_ms() + ANSWER_MS;
	send_bounded(fd, answer, answer_len);
	if (answer_len > ANSWER_KEEP)
		madvise(answer + ANSWER_KEEP, ANSWER_MAX - ANSWER_KEEP, MADV_DONTNEED);
	answer_len = 0;
	shutdown(fd, SHUT_WR);
}

#define TEXT "text/plain; charset=utf-8"

static void answer_profile(int fd, int allocs, int text, int head,
			   const struct heap_base *base)
{
	struct outbuf o;
	const char *attach = allocs ? "Content-Disposition: attachment; "
				      "filename=\"allocs\"\r\n"
				    : "Content-Disposition: attachment; "
				      "filename=\"heap\"\r\n";
	if (begin(fd, &o, text ? TEXT : "application/octet-stream",
		  text ? "" : attach))
		return;
	if (!head) {
		if (text)
			profile_write_text(&o, base);
		else
			profile_write_proto(&o, allocs ? PROFILE_ALLOCS
						       : PROFILE_HEAP,
					    base);
	}
	finish(fd, &o);
}

/* The value of query parameter key (NULL when absent). */
static const char *param(const struct http_request *r, const char *key,
			 size_t *vlen)
{
	const char *q = r->query, *end = r->query + r->query_len;
	size_t klen = strlen(key);
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(q, '=', (size_t)(stop - q));
		const char *kend = eq ? eq : stop;
		if ((size_t)(kend - q) == klen && !memcmp(q, key, klen)) {
			*vlen = eq ? (size_t)(stop - eq - 1) : 0;
			return eq ? eq + 1 : stop;
		}
		q = stop + 1;
	}
	return NULL;
}

/* A whole number in [0, max] (0 also for an empty value). -1 if not. */
static long number(const char *v, size_t n, long max)
{
	long x = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9' || (x = x * 10 + (v[i] - '0')) > max)
			return -1;
	}
	return x;
}

static int path_is(const struct http_request *r, const char *p)
{
	return r->path_len == strlen(p) && !memcmp(r->path, p, r->path_len);
}

static int answer_heap(int fd, const struct http_request *r, int allocs,
		       struct http_parked *p)
{
	size_t n;
	const char *v = param(r, "debug", &n);
	long debug = v ? number(v, n, 1000) : 0;
	const char *s = param(r, "seconds", &n);
	long seconds = s ? number(s, n, SECONDS_MAX) : 0;
	if (r->method == HTTP_POST) {
		http_reject(fd, 405);
		return 0;
	}
	if (debug < 0 || seconds < 0 || (s && seconds == 0)) {
		http_reject(fd, 400);
		return 0;
	}
	if (!s) {
		answer_profile(fd, allocs, debug > 0, r->method == HTTP_HEAD,
			       NULL);
		return 0;
	}
	/* Go's delta profile: the base now, the answer in N seconds, and
	 * other connections served meanwhile. */
	struct heap_base *base = heap_base_take();
	if (!base) {
		http_reject(fd, 503);
		return 0;
	}
	*p = (struct http_parked){base, allocs, debug > 0,
				  r->method == HTTP_HEAD,
				  now_ms() + (uint64_t)seconds * 1000};
	return 1;
}

void http_answer_parked(int fd, struct http_parked *p)
{
	answer_profile(fd, p->allocs, p->text, p->head, p->base);
	http_drop_parked(p);
}

void http_drop_parked(struct http_parked *p)
{
	if (p->base)
		heap_base_release(p->base);
	p->base = NULL;
}

static void answer_text(int fd, const struct http_request *r, const char *type,
			void (*write)(struct outbuf *))
{
	struct outbuf o;
	if (begin(fd, &o, type, ""))
		return;
	if (r->method != HTTP_HEAD)
		write(&o);
	finish(fd, &o);
}

static void answer_symbol(int fd, const struct http_request *r)
{
	struct outbuf o;
	if (begin(fd, &o, TEXT, ""))
		return;
	if (r->method == HTTP_POST)
		symbolz_write(&o, r->body, r->body_len);
	else if (r->method == HTTP_GET && r->query_len) /* Go takes GET ?0x1+0x2 */
		symbolz_write(&o, r->query, r->query_len);
	else if (r->method == HTTP_GET)
		symbolz_write(&o, NULL, 0);
	finish(fd, &o);
}

int http_answer(int fd, const struct http_request *r, struct http_parked *p)
{
	if (!r->authorized) {
		http_reject(fd, 401);
		return 0;
	}
	if (path_is(r, "/debug/pprof/heap"))
		return answer_heap(fd, r, 0, p);
	if (path_is(r, "/debug/pprof/allocs"))
		return answer_heap(fd, r, 1, p);
	if (path_is(r, "/debug/pprof/symbol")) {
		answer_symbol(fd, r);
		return 0;
	}
	if (r->method == HTTP_POST)
		http_reject(fd, 405);
	else if (path_is(r, "/metrics"))
		answer_text(fd, r, "text/plain; version=0.0.4; charset=utf-8",
			    metrics_write);
	else if (path_is(r, "/debug/pprof/threads"))
		answer_text(fd, r, TEXT, pages_threads);
	else if (path_is(r, "/debug/pprof/") || path_is(r, "/debug/pprof"))
		answer_text(fd, r, "text/html; charset=utf-8", pages_index);
	else
		http_reject(fd, 404);
	return 0;
}
