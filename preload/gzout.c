/* gzip for dump files and profiles. zlib is linked in statically with its symbols
 * hidden (the Makefile's --exclude-libs): no call of ours binds to a copy
 * of zlib the program carries, and the program's own zlib is untouched.
 * zlib takes its memory from the tracer's arena through zalloc/zfree, never
 * from the program's malloc. One stream serves every dump (dumps are
 * serialised by the dump lock), another every profile, and each is reset
 * at the start of each use, which also mends a stream that a fork caught
 * half-way through.
 *
 * Level 1: a dump is mostly hex return addresses repeated from line to
 * line, which level 1 already shrinks about tenfold; higher levels cost
 * more time on the dump thread for a few percent (docs/benchmarks.md). */
#include "gzout.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "arena.h"
#include "outbuf.h"

#define GZ_LEVEL 1
#define GZ_CHUNK (256 << 10)
#define ALLOC_HEADER 16 /* keeps zlib's blocks 16-byte aligned */

struct gzout {
	z_stream zs;
	int ready;
	unsigned char *chunk;
	/* Where o wrote before: the compressed bytes go there. */
	int (*next)(int fd, const char *p, size_t n);
};

static struct gzout streams[GZOUT_STREAMS];

/* Each block is its own mapping, its size stored before it; zlib asks for
 * a handful of blocks once, when the stream is first made. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	size_t n = (size_t)items * size + ALLOC_HEADER;
	unsigned char *p = arena_map(n);
	if (!p)
		return Z_NULL;
	memcpy(p, &n, sizeof(n));
	return p + ALLOC_HEADER;
}

static void z_free(voidpf opaque, voidpf block)
{
	unsigned char *p = (unsigned char *)block - ALLOC_HEADER;
	size_t n;
	(void)opaque;
	memcpy(&n, p, sizeof(n));
	arena_unmap(p, n);
}

static int start(struct gzout *g)
{
	z_stream *zs = &g->zs;
	if (!g->chunk && !(g->chunk = arena_map(GZ_CHUNK)))
		return ENOMEM;
	if (g->ready)
		return deflateReset(zs) == Z_OK ? 0 : EIO;
	zs->zalloc = z_alloc;
	zs->zfree = z_free;
	zs->opaque = Z_NULL;
	/* 15 + 16: a 32 KiB window and a gzip header and trailer. */
	if (deflateInit2(zs, GZ_LEVEL, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return ENOMEM;
	g->ready = 1;
	return 0;
}

/* Runs deflate until it has taken all its input (and, with Z_FINISH,
 * ended the stream), writing each full chunk out. */
static int pump(struct gzout *g, int fd, int flush)
{
	z_stream *zs = &g->zs;
	do {
		zs->next_out = g->chunk;
		zs->avail_out = GZ_CHUNK;
		if (deflate(zs, flush) == Z_STREAM_ERROR)
			return EIO;
		const char *p = (const char *)g->chunk;
		size_t n = GZ_CHUNK - zs->avail_out;
		int err = g->next ? g->next(fd, p, n) : out_write_all(fd, p, n);
		if (err)
			return err;
	} while (zs->avail_out == 0);
	return 0;
}

static int feed(struct gzout *g, int fd, const char *p, size_t n)
{
	g->zs.next_in = (Bytef *)(uintptr_t)p;
	g->zs.avail_in = (uInt)n;
	return pump(g, fd, Z_NO_FLUSH);
}

/* An outbuf filter has no argument of its own: one function per stream. */
static int feed_dump(int fd, const char *p, size_t n)
{
	return feed(&streams[GZOUT_DUMP], fd, p, n);
}

static int feed_profile(int fd, const char *p, size_t n)
{
	return feed(&streams[GZOUT_PROFILE], fd, p, n);
}

static int (*const feeders[GZOUT_STREAMS])(int, const char *, size_t) = {
    [GZOUT_DUMP] = feed_dump, [GZOUT_PROFILE] = feed_profile};

int gzout_begin(enum gzout_stream which, struct outbuf *o)
{
	struct gzout *g = &streams[which];
	int err = start(g);
	if (err)
		return err;
	out_flush(o);
	g->next = o->filter;
	o->filter = feeders[which];
	return 0;
}

void gzout_end(struct outbuf *o)
{
	unsigned which = 0;
	while (which < GZOUT_STREAMS && o->filter != feeders[which])
		which++;
	if (which == GZOUT_STREAMS)
		return; /* gzout_begin failed: nothing to end */
	struct gzout *g = &streams[which];
	out_flush(o);
	g->zs.next_in = Z_NULL;
	g->zs.avail_in = 0;
	if (!o->err)
		o->err = pump(g, o->fd, Z_FINISH);
	o->filter = g->next;
}
