/* workload: the allocation-heavy program of the benchmark.
 *
 * It exists to measure what a heap tracer costs per allocation, with nothing
 * else in the way: each thread runs a fixed number of operations on its own
 * window of live blocks (free the block in a random slot, allocate a new one
 * there), with sizes log-uniform from 16 B to 4 KiB and a few large blocks,
 * through malloc, calloc and realloc. The random numbers are a per-thread
 * xorshift seeded from the thread index, so every run does the same work.
 * It times itself from a barrier to the last join and prints one line:
 *
 *   threads=2 ops=4000000 elapsed_s=0.412 ops_per_s=9708737 maxrss_kb=5120 check=...
 *
 * usage: workload [threads] [total_ops] [window]
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "xorshift.h"

struct worker {
	pthread_t tid;
	unsigned index;
	unsigned long ops;
	unsigned window;
	uint64_t check;
	char pad[64];
};

static pthread_barrier_t start_line;

/* 16 B .. 4 KiB, log-uniform by octave; about one in 2000 is 64 KiB..1 MiB. */
static size_t pick_size(uint64_t *s)
{
	uint64_t r = next_rand(s);
	if (r % 2000 == 0) {
		unsigned shift = 16 + (unsigned)((r >> 16) % 5); /* 64 KiB .. 1 MiB */
		return ((size_t)1 << shift) + (size_t)((r >> 24) % 4096);
	}
	unsigned octave = (unsigned)((r >> 8) % 8); /* 16..31, 32..63, ... 2048..4095 */
	size_t base = (size_t)16 << octave;
	return base + (size_t)((r >> 16) % base);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t s = 0x9e3779b97f4a7c15ULL * (w->index + 1);
	void **slots = calloc(w->window, sizeof *slots);
	size_t *sizes = calloc(w->window, sizeof *sizes);
	uint64_t check = 0;
	if (!slots || !sizes) {
		fprintf(stderr, "workload: out of memory\n");
		exit(2);
	}
	pthread_barrier_wait(&start_line);
	for (unsigned long i = 0; i < w->ops; i++) {
		uint64_t r = next_rand(&s);
		unsigned slot = (unsigned)(r % w->window);
		unsigned kind = (unsigned)((r >> 32) % 16);
		unsigned char *p = slots[slot];
		if (p && kind == 0) {
			/* grow or shrink in place: realloc */
			size_t n = pick_size(&s);
			unsigned char *q = realloc(p, n);
			if (!q) {
				fprintf(stderr, "workload: realloc failed\n");
				exit(2);
			}
			q[n - 1] = (unsigned char)i;
			slots[slot] = q;
			sizes[slot] = n;
			continue;
		}
		if (p) {
			check += p[0] + p[sizes[slot] - 1];
			free(p);
		}
		size_t n = pick_size(&s);
		if (kind == 1) {
			p = calloc(1, n);
		} else {
			p = malloc(n);
		}
		if (!p) {
			fprintf(stderr, "workload: allocation of %zu failed\n", n);
			exit(2);
		}
		p[0] = (unsigned char)(i | 1);
		p[n - 1] = (unsigned char)r;
		slots[slot] = p;
		sizes[slot] = n;
	}
	for (unsigned k = 0; k < w->window; k++)
		free(slots[k]);
	free(slots);
	free(sizes);
	w->check = check;
	return NULL;
}

static unsigned long arg_ul(const char *s, unsigned long dflt)
{
	if (!s)
		return dflt;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 0);
	if (errno || *end || v == 0) {
		fprintf(stderr, "workload: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned threads = (unsigned)arg_ul(argc > 1 ? argv[1] : NULL, 2);
	unsigned long total = arg_ul(argc > 2 ? argv[2] : NULL, 4000000);
	unsigned window = (unsigned)arg_ul(argc > 3 ? argv[3] : NULL, 1024);
	if (threads > 256) {
		fprintf(stderr, "workload: at most 256 threads\n");
		return 2;
	}
	struct worker *ws = calloc(threads, sizeof *ws);
	if (!ws)
		return 2;
	pthread_barrier_init(&start_line, NULL, threads + 1);
	for (unsigned t = 0; t < threads; t++) {
		ws[t].index = t;
		ws[t].ops = total / threads;
		ws[t].window = window;
		int err = pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]);
		if (err) {
			fprintf(stderr, "workload: pthread_create: %s\n", strerror(err));
			return 2;
		}
	}
	struct timespec t0, t1;
	pthread_barrier_wait(&start_line);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t check = 0;
	for (unsigned t = 0; t < threads; t++) {
		pthread_join(ws[t].tid, NULL);
		check += ws[t].check;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	unsigned long ops = ws[0].ops * threads;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("threads=%u ops=%lu elapsed_s=%.6f ops_per_s=%.0f maxrss_kb=%ld check=%llu\n",
	       threads, ops, secs, (double)ops / secs, ru.ru_maxrss,
	       (unsigned long long)check);
	pthread_barrier_destroy(&start_line);
	free(ws);
	return 0;
}
