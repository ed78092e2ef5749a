/* HTTP/1.1 for the endpoint HEAPTRACE_HTTP names: parsing a request with
 * limits, the bearer token, and the routes of /debug/pprof/ and /metrics.
 * One request per connection (Connection: close). Server thread only. */
#ifndef HEAPTRACE_HTTP_H
#define HEAPTRACE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX 16384     /* request line and headers */
#define HTTP_BODY_MAX (1 << 20) /* a POST to /debug/pprof/symbol */
#define HTTP_HEADERS_MAX 64

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST };

struct http_request {
	enum http_method method;
	const char *path, *query, *body; /* into the connection's buffer */
	size_t path_len, query_len, body_len;
	int authorized; /* no token is configured, or it was given */
};

/* Reads HEAPTRACE_HTTP_TOKEN_FILE once. 0 when HTTP may be served (no
 * token configured, or one read); -1 said on stderr: not served. */
int http_token_load(void);

/* A request being received, zeroed when its connection opens: how far
 * the end of the headers was looked for, and once they are read, how
 * many bytes the whole request has. Each byte is looked at a bounded
 * number of times however slowly the request arrives. */
struct http_progress {
	size_t scanned, total;
	struct http_request r;
};

/* Parses the bytes received so far (buf grows, never moves): 0 when more
 * are needed, 200 when p->r holds a whole request, else the status to
 * refuse it with (400, 405, 413, 414, 431, 501, 505). */
int http_parse(const char *buf, size_t len, struct http_progress *p);

/* A short answer with no body but the reason, for a refused request or
 * a connection over the limit; never blocks. */
void http_reject(int fd, int status);

/* A delta profile (?seconds=N) waiting for its time. */
struct heap_base;
struct http_parked {
	struct heap_base *base;
	int allocs, text, head;
	uint64_t due_ms; /* CLOCK_MONOTONIC */
};

/* Answers r on fd (blocking, with a time limit on the whole answer).
 * Returns 1 when the answer is a delta to be given at p->due_ms by
 * http_answer_parked, 0 when it is done. */
int http_answer(int fd, const struct http_request *r, struct http_parked *p);
void http_answer_parked(int fd, struct http_parked *p);

/* Lets go of a delta whose client left. */
void http_drop_parked(struct http_parked *p);

#endif
