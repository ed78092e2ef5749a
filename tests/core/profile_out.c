/* The profile encoders without the HTTP server: this program links the
 * preload's objects (so its own malloc is traced, as under LD_PRELOAD),
 * has a library allocate a known pattern, and writes what the endpoint
 * would serve to files that tests/test_profile.py reads with go tool
 * pprof.
 *
 * argv: DIR SIZE [GONE], SIZE keep_small's symbol size in hex, GONE a
 * file to delete before anything is written (the sites' library, which
 * must still be named). Writes
 * DIR/heap.pb.gz (profile_write_proto, PROFILE_HEAP), DIR/allocs.pb.gz
 * (PROFILE_ALLOCS), DIR/delta.pb.gz (a delta over phase 2), DIR/heap.txt
 * (?debug=1) and DIR/symbolz.txt: the answer to a symbolz POST (kept in
 * DIR/symbolz.req) of the sites' addresses, of keep_small's last byte, of
 * the byte after it, of 0x1, and of qsort in libc (whose only symbols are
 * in .dynsym). heaptrace_dump() writes a dump of the same moment as
 * heap.pb.gz.
 *
 * At HEAPTRACE_RATE=1, per function (built with -fno-inline):
 *   keep_small: in use  6 x 1000 B, allocated 10 x 1000 B  (phase 1; 4
 *               of them freed in phase 2)
 *   churn:      in use  5 x 2048 B, allocated 20 x 2048 B  (phase 1)
 *   grow:       in use  8 x 4096 B, allocated  8 x 4096 B  (phase 2)
 * The delta holds grow, and keep_small's -4 x 1000 B in use (Go's delta
 * subtracts every sample type). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../preload/outbuf.h"
#include "../../preload/profile.h"
#include "../../preload/sampler.h"
/* In a library of their own (libprofile_sites.so): the unwinder leaves out
 * the frames of the object the tracer is in, here this program. */
#include "profile_sites.h"

int heaptrace_dump(void);

static char buf[1 << 16];
static const char *dir;

static int open_out(const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	return fd;
}

/* Runs one writer with the guard set, as the server thread does. */
#define WRITE(name, call)                                                  \
	do {                                                               \
		struct outbuf o;                                           \
		int fd = open_out(name);                                   \
		outbuf_start(&o, fd, buf, sizeof(buf));                    \
		ht_thread.guard = 1;                                       \
		int err = (call);                                          \
		ht_thread.guard = 0;                                       \
		close(fd);                                                 \
		if (err) {                                                 \
			fprintf(stderr, "%s: error %d\n", name, err);      \
			exit(1);                                           \
		}                                                          \
	} while (0)

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: profile_out DIR SIZE [GONE]\n");
		return 2;
	}
	dir = argv[1];
	unsigned long size = strtoul(argv[2], NULL, 16);
	keep_small();
	churn();
	ht_thread.guard = 1;
	struct heap_base *base = heap_base_take();
	ht_thread.guard = 0;
	if (!base) {
		fprintf(stderr, "no base\n");
		return 1;
	}
	release_some();
	grow();
	if (argc == 4 && unlink(argv[3])) {
		perror(argv[3]);
		return 1;
	}
	if (heaptrace_dump()) {
		fprintf(stderr, "no dump\n");
		return 1;
	}
	WRITE("heap.pb.gz", profile_write_proto(&o, PROFILE_HEAP, NULL));
	WRITE("allocs.pb.gz", profile_write_proto(&o, PROFILE_ALLOCS, NULL));
	WRITE("delta.pb.gz", profile_write_proto(&o, PROFILE_HEAP, base));
	WRITE("heap.txt", profile_write_text(&o, NULL));
	char req[256];
	char *k = (char *)keep_small;
	int n = snprintf(req, sizeof(req), "%p+%p+%p+%p+%p+0x1+%p", (void *)(k + 1),
			 (void *)((char *)churn + 1), (void *)((char *)grow + 1),
			 (void *)(k + size - 1), (void *)(k + size),
			 (void *)((char *)qsort + 1));
	WRITE("symbolz.txt", symbolz_write(&o, req, (size_t)n));
	int fd = open_out("symbolz.req");
	if (write(fd, req, (size_t)n) != n)
		return 1;
	close(fd);
	heap_base_release(base);
	struct heap_totals t;
	ht_thread.guard = 1;
	heap_totals_get(&t);
	ht_thread.guard = 0;
	printf("inuse_objects %.0f inuse_bytes %.0f alloc_objects %.0f "
	       "alloc_bytes %.0f stacks %llu\n",
	       t.inuse_objects, t.inuse_bytes, t.alloc_objects, t.alloc_bytes,
	       (unsigned long long)t.stacks);
	return 0;
}
