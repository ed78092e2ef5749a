/* gzip for dump files. zlib is linked in statically with its symbols
 * hidden (the Makefile's --exclude-libs): no call of ours binds to a copy
 * of zlib the program carries, and the program's own zlib is untouched.
 * zlib takes its memory from the tracer's arena through zalloc/zfree, never
 * from the program's malloc. One stream serves every dump (dumps are
 * serialised by the dump lock) and is reset at the start of each, which
 * also mends a stream that a fork caught half-way through a dump.
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

static z_stream zs;
static int ready;
static unsigned char *chunk;

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

int gzout_start(void)
{
	if (!chunk && !(chunk = arena_map(GZ_CHUNK)))
		return ENOMEM;
	if (ready)
		return deflateReset(&zs) == Z_OK ? 0 : EIO;
	zs.zalloc = z_alloc;
	zs.zfree = z_free;
	zs.opaque = Z_NULL;
	/* 15 + 16: a 32 KiB window and a gzip header and trailer. */
	if (deflateInit2(&zs, GZ_LEVEL, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return ENOMEM;
	ready = 1;
	return 0;
}

/* Runs deflate until it has taken all its input (and, with Z_FINISH,
 * ended the stream), writing each full chunk out. */
static int pump(int fd, int flush)
{
	do {
		zs.next_out = chunk;
		zs.avail_out = GZ_CHUNK;
		if (deflate(&zs, flush) == Z_STREAM_ERROR)
			return EIO;
		int err = out_write_all(fd, (const char *)chunk,
					GZ_CHUNK - zs.avail_out);
		if (err)
			return err;
	} while (zs.avail_out == 0);
	return 0;
}

int gzout_write(int fd, const char *p, size_t n)
{
	zs.next_in = (Bytef *)(uintptr_t)p;
	zs.avail_in = (uInt)n;
	return pump(fd, Z_NO_FLUSH);
}

int gzout_finish(int fd)
{
	zs.next_in = Z_NULL;
	zs.avail_in = 0;
	return pump(fd, Z_FINISH);
}
