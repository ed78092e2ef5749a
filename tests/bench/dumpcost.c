/* dumpcost: how long a heaptrace dump takes, and what it costs the threads
 * that keep allocating meanwhile.
 *
 * Run under the preload with HEAPTRACE_DIR set. It first fills the stack
 * table with STACKS distinct call stacks: stack i is a recursion 17 levels
 * deep whose path (one of two functions, one of two call sites, per level)
 * spells i in binary, so every i has its own return addresses. At
 * HEAPTRACE_RATE=1 each leaf keeps one 64-byte block live; at a sampling
 * rate R each leaf allocates and frees 8*R bytes, which is sampled with
 * probability 1-exp(-8), so the table still ends up with nearly STACKS
 * stacks without keeping gigabytes alive.
 *
 * Then it times DUMPS dumps: raise the dump signal, wait for the file
 * heaptrace.<pid>.<seq>.heap (.heap.gz under HEAPTRACE_COMPRESS; it
 * appears by rename, whole), delete it.
 * The wait sleeps on inotify rather than polling: a poller waking every
 * fraction of a millisecond would take CPU from the threads measured.
 *
 * Then, if PHASES > 0, ALLOC_THREADS threads run an allocation loop while the
 * main thread alternates PHASE_S-second phases: quiet, dumping back to back,
 * quiet, dumping, ... and prints the allocating threads' ops/s in each.
 *
 * Output is key=value lines for tests/bench/run.py.
 *
 * usage: dumpcost STACKS [DUMPS] [PHASES] [PHASE_S] [ALLOC_THREADS]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "xorshift.h"

#define DEPTH 17 /* 2^17 = 131072 distinct paths */

static size_t leaf_size;
static int keep_live;
static void **kept;
static unsigned long n_kept;
static volatile unsigned long sink;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void leaf(void)
{
	unsigned char *p = malloc(leaf_size);
	if (!p) {
		fprintf(stderr, "dumpcost: malloc(%zu) failed\n", leaf_size);
		exit(2);
	}
	p[0] = 1;
	if (keep_live)
		kept[n_kept++] = p;
	else
		free(p);
}

static void step1(int level, unsigned long i);

/* Two functions, each with two call sites: the return address of every level
 * says which bit was set there. The store after each call keeps the calls
 * from becoming tail calls (which would leave no frame). */
__attribute__((noinline)) static void step0(int level, unsigned long i)
{
	if (level == DEPTH)
		leaf();
	else if ((i >> level) & 1)
		step1(level + 1, i);
	else
		step0(level + 1, i);
	sink += (unsigned long)level;
}

__attribute__((noinline)) static void step1(int level, unsigned long i)
{
	if (level == DEPTH)
		leaf();
	else if ((i >> level) & 1)
		step1(level + 1, i);
	else
		step0(level + 1, i);
	sink += (unsigned long)level + 1;
}

/* ---- dumps ---- */

static char dump_dir[4096];
static const char *dump_suffix = ""; /* ".gz" with HEAPTRACE_COMPRESS */
static unsigned next_seq = 1;

static int dir_events = -1; /* inotify on dump_dir: files renamed in */

static int dump_present(char *path, size_t len)
{
	for (unsigned s = next_seq; s < next_seq + 4; s++) {
		struct stat st;
		snprintf(path, len, "%s/heaptrace.%d.%04u.heap%s", dump_dir, (int)getpid(),
			 s, dump_suffix);
		if (stat(path, &st) == 0) {
			next_seq = s + 1;
			return 1;
		}
	}
	return 0;
}

/* Waits for the next dump file; returns its path in `path` or -1. */
static int wait_dump(char *path, size_t len, double timeout_s)
{
	double deadline = now() + timeout_s;
	char events[4096];
	for (;;) {
		if (dump_present(path, len))
			return 0;
		double left = deadline - now();
		if (left <= 0)
			return -1;
		/* A rename after the check above is still queued in dir_events. */
		struct pollfd pfd = {dir_events, POLLIN, 0};
		if (poll(&pfd, 1, (int)(left * 1000) + 1) > 0 &&
		    read(dir_events, events, sizeof events) < 0 && errno != EAGAIN)
			return -1;
	}
}

struct dump_info {
	long long stacks, tracer_bytes, dropped_stack_table, size;
};

static void read_dump(const char *path, struct dump_info *di)
{
	memset(di, 0, sizeof *di);
	struct stat st;
	if (stat(path, &st) == 0)
		di->size = (long long)st.st_size;
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
	FILE *f = *dump_suffix ? popen(cmd, "r") : fopen(path, "r");
	if (!f)
		return;
	char line[512];
	for (int n = 0; n < 200 && fgets(line, sizeof line, f); n++) {
		long long v;
		if (sscanf(line, "# stacks: %lld", &v) == 1)
			di->stacks = v;
		else if (sscanf(line, "# tracer_bytes: %lld", &v) == 1)
			di->tracer_bytes = v;
		else if (sscanf(line, "# dropped_stack_table: %lld", &v) == 1)
			di->dropped_stack_table = v;
		else if (line[0] != '#' && n > 0)
			break;
	}
	if (*dump_suffix) {
		while (fgets(line, sizeof line, f))
			; /* gzip must not die of SIGPIPE before pclose */
		pclose(f);
	} else {
		fclose(f);
	}
}

static int dump_signal(void)
{
	const char *s = getenv("HEAPTRACE_SIGNAL");
	if (!s || !*s || !strcmp(s, "USR1") || !strcmp(s, "SIGUSR1"))
		return SIGUSR1;
	if (!strcmp(s, "USR2") || !strcmp(s, "SIGUSR2"))
		return SIGUSR2;
	return atoi(s);
}

/* One dump: signal, wait, delete. Returns seconds, or -1. */
static double one_dump(struct dump_info *di)
{
	char path[4200];
	double t0 = now();
	kill(getpid(), dump_signal());
	if (wait_dump(path, sizeof path, 60.0) < 0)
		return -1;
	double t = now() - t0;
	if (di)
		read_dump(path, di);
	unlink(path);
	return t;
}

/* ---- allocating threads ---- */

struct counter {
	_Alignas(64) atomic_ulong ops;
	unsigned index;
	pthread_t tid;
};

static atomic_int stop;

static void *allocator_main(void *arg)
{
	struct counter *c = arg;
	enum { WINDOW = 1024 };
	void *slots[WINDOW] = {0};
	uint64_t s = 0x9e3779b97f4a7c15ULL * (c->index + 7);
	unsigned long ops = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		for (int k = 0; k < 256; k++) {
			uint64_t r = next_rand(&s);
			unsigned slot = (unsigned)(r % WINDOW);
			size_t base = (size_t)16 << ((r >> 8) % 8);
			size_t n = base + (size_t)((r >> 16) % base);
			free(slots[slot]);
			unsigned char *p = malloc(n);
			if (!p)
				exit(2);
			p[0] = (unsigned char)r;
			slots[slot] = p;
		}
		ops += 256;
		atomic_store_explicit(&c->ops, ops, memory_order_relaxed);
	}
	for (int k = 0; k < WINDOW; k++)
		free(slots[k]);
	return NULL;
}

static unsigned long total_ops(struct counter *cs, unsigned n)
{
	unsigned long t = 0;
	for (unsigned i = 0; i < n; i++)
		t += atomic_load_explicit(&cs[i].ops, memory_order_relaxed);
	return t;
}

static long arg_l(int argc, char **argv, int i, long dflt)
{
	if (argc <= i)
		return dflt;
	char *end;
	errno = 0;
	long v = strtol(argv[i], &end, 0);
	if (errno || *end || v < 0) {
		fprintf(stderr, "dumpcost: bad number '%s'\n", argv[i]);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: dumpcost STACKS [DUMPS] [PHASES] [PHASE_S] [ALLOC_THREADS]\n");
		return 2;
	}
	unsigned long stacks = (unsigned long)arg_l(argc, argv, 1, 0);
	long dumps = arg_l(argc, argv, 2, 5);
	long phases = arg_l(argc, argv, 3, 0);
	double phase_s = (double)arg_l(argc, argv, 4, 2);
	unsigned alloc_threads = (unsigned)arg_l(argc, argv, 5, 1);
	const char *pre = getenv("LD_PRELOAD");
	const char *dir = getenv("HEAPTRACE_DIR");
	if (!pre || !strstr(pre, "heaptrace") || !dir) {
		fprintf(stderr, "dumpcost: run under LD_PRELOAD=libheaptrace.so with HEAPTRACE_DIR set\n");
		return 2;
	}
	if (stacks > (1UL << DEPTH)) {
		fprintf(stderr, "dumpcost: at most %lu stacks\n", 1UL << DEPTH);
		return 2;
	}
	snprintf(dump_dir, sizeof dump_dir, "%s", dir);
	const char *compress = getenv("HEAPTRACE_COMPRESS");
	if (compress && (!strcmp(compress, "1") || !strcmp(compress, "gzip")))
		dump_suffix = ".gz";
	dir_events = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (dir_events < 0 || inotify_add_watch(dir_events, dump_dir, IN_MOVED_TO) < 0) {
		fprintf(stderr, "dumpcost: inotify on %s: %s\n", dump_dir, strerror(errno));
		return 2;
	}
	const char *rs = getenv("HEAPTRACE_RATE");
	long rate = rs && *rs ? atol(rs) : 524288;
	keep_live = rate <= 1;
	leaf_size = keep_live ? 64 : (size_t)rate * 8;
	kept = keep_live ? calloc(stacks ? stacks : 1, sizeof *kept) : NULL;

	double t0 = now();
	for (unsigned long i = 0; i < stacks; i++)
		step0(0, i);
	printf("stacks_requested=%lu build_s=%.3f rate=%ld\n", stacks, now() - t0, rate);
	fflush(stdout);

	for (long d = 0; d < dumps; d++) {
		struct dump_info di;
		double t = one_dump(&di);
		if (t < 0) {
			printf("dump_timeout=1\n");
			return 1;
		}
		printf("dump_s=%.6f dump_bytes=%lld stacks=%lld tracer_bytes=%lld dropped_stack_table=%lld\n",
		       t, di.size, di.stacks, di.tracer_bytes, di.dropped_stack_table);
		fflush(stdout);
	}

	if (phases > 0 && alloc_threads > 0) {
		struct counter *cs = aligned_alloc(64, sizeof *cs * alloc_threads);
		if (!cs)
			return 2;
		memset(cs, 0, sizeof *cs * alloc_threads);
		for (unsigned i = 0; i < alloc_threads; i++) {
			cs[i].index = i;
			if (pthread_create(&cs[i].tid, NULL, allocator_main, &cs[i]))
				return 2;
		}
		struct timespec warm = {0, 200000000};
		nanosleep(&warm, NULL);
		for (long ph = 0; ph < phases * 2; ph++) {
			int dumping = ph % 2;
			unsigned long o0 = total_ops(cs, alloc_threads);
			double p0 = now(), end = p0 + phase_s;
			long n = 0;
			if (dumping) {
				while (now() < end) {
					if (one_dump(NULL) < 0) {
						printf("dump_timeout=1\n");
						return 1;
					}
					n++;
				}
			} else {
				struct timespec nap = {0, 5000000};
				while (now() < end)
					nanosleep(&nap, NULL);
			}
			unsigned long o1 = total_ops(cs, alloc_threads);
			double el = now() - p0;
			printf("phase=%ld dumping=%d ops_per_s=%.0f dumps=%ld seconds=%.3f\n", ph, dumping,
			       (double)(o1 - o0) / el, n, el);
			fflush(stdout);
		}
		atomic_store(&stop, 1);
		for (unsigned i = 0; i < alloc_threads; i++)
			pthread_join(cs[i].tid, NULL);
		free(cs);
	}
	for (unsigned long i = 0; i < n_kept; i++)
		free(kept[i]);
	free(kept);
	return 0;
}
