/* The dump writer. It reads the tables while other threads keep
 * allocating, in three steps: the list of stacks, then the live map, which
 * gives each stack's bytes in use and their ages (entries that change
 * while being read are skipped), then each stack's allocation counts. The
 * header's totals are summed from the same snapshot as the sample lines,
 * so the two agree.
 *
 * Each stack's estimate is written as the integers that pprof's heap_v2
 * scaling, 1/(1-exp(-avg/rate)), turns back into that estimate. */
#include "dump.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <math.h>
#include <sched.h>
#include <stdio.h> /* renameat */
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "dumpdir.h"
#include "dumpsig.h"
#include "forkguard.h"
#include "gzout.h"
#include "livemap.h"
#include "log.h"
#include "outbuf.h"
#include "sampler.h"
#include "stacktab.h"
#include "threads.h"
#include "tracer.h"
#include "unwind.h"

#define AGE_BUCKETS (HT_MAX_AGE_BOUNDS + 1)

struct snap {
	struct stack_rec *rec;
	uint64_t samples, live_samples; /* allocations sampled, still live */
	double in_objs, in_bytes, al_objs, al_bytes;
	uint64_t in_c, in_b, al_c, al_b; /* as written */
	double ages[AGE_BUCKETS][2];
};

struct dump_state {
	struct snap *snaps;
	size_t n, cap;
	uint32_t now; /* tracer_now_ticks() */
};

/* Scratch memory kept from one dump to the next (dumps are serialised by
 * the dumper's lock): mapping it afresh each time would cost a page fault
 * per page, which at 100k stacks is most of a dump's time. */
#define OUT_BUFFER (1 << 20)
static struct snap *snap_buf;
static size_t snap_cap;
static char *out_buf;

static int reserve_scratch(size_t stacks)
{
	if (!out_buf && !(out_buf = arena_map(OUT_BUFFER)))
		return -1;
	if (stacks <= snap_cap)
		return 0;
	size_t cap = stacks > 2 * snap_cap ? stacks : 2 * snap_cap;
	struct snap *bigger = arena_map(cap * sizeof(struct snap));
	if (!bigger)
		return -1;
	arena_unmap(snap_buf, snap_cap * sizeof(struct snap));
	snap_buf = bigger;
	snap_cap = cap;
	return 0;
}

/* The integers (c, b) that the reader scales back to about (objs, bytes):
 * both times 1-exp(-x/rate), x the mean size, as jemalloc writes them. The
 * rounding of c to a whole count is the one error left, about 1/(2c)
 * relative on each line, and it does not favour either direction. */
static void reader_pair(double objs, double bytes, uint64_t *c, uint64_t *b)
{
	if (objs < 0.5) {
		*c = *b = 0;
		return;
	}
	double q = 1.0;
	if (ht_config.rate > 1 && bytes > 0)
		q = -expm1(-(bytes / objs) / (double)ht_config.rate);
	*c = (uint64_t)llround(objs * q);
	*b = (uint64_t)llround(bytes * q);
	if (*c == 0 && *b > 0)
		*c = 1; /* a count of 0 with bytes is an error to readers */
}

static void snap_one(struct stack_rec *r, void *arg)
{
	struct dump_state *d = arg;
	if (d->n == d->cap)
		return;
	struct stack_totals t;
	stack_read(r, &t);
	if (t.samples == 0)
		return; /* a thread creation stack, no samples */
	struct snap *s = &d->snaps[d->n];
	memset(s, 0, sizeof(*s));
	s->rec = r;
	r->dump_index = (uint32_t)++d->n; /* 0 = not in this dump */
}

static int snapshot(struct dump_state *d)
{
	if (reserve_scratch(atomic_load(&ht_stacks.order_len) + 1024))
		return -1;
	d->snaps = snap_buf;
	d->cap = snap_cap;
	d->n = 0;
	if (ht_stacks.order)
		stacktab_foreach(&ht_stacks, snap_one, d);
	return 0;
}

/* What is in use is the sum of the live samples, by stack and by age. */
static void add_live(const struct live_sample *ls, void *arg)
{
	struct dump_state *d = arg;
	/* A torn read could give any id: check it names a carved record. */
	if ((size_t)ls->stack * CACHE_LINE + sizeof(struct stack_rec) >
	    atomic_load(&ht_stacks.arena_used))
		return;
	struct stack_rec *r = stacktab_rec(&ht_stacks, ls->stack);
	if (r->dump_index == 0 || r->dump_index > d->n)
		return;
	struct snap *s = &d->snaps[r->dump_index - 1];
	if (s->rec != r)
		return;
	uint64_t age = d->now > ls->time ? d->now - ls->time : 0;
	unsigned b = 0;
	while (b < ht_config.n_age_bounds &&
	       age >= (uint64_t)ht_config.age_bounds_s[b] * TRACER_TICKS_PER_S)
		b++;
	double w = sampler_weight(ls->size);
	s->live_samples++;
	s->ages[b][0] += w;
	s->ages[b][1] += w * (double)ls->size;
}

/* The allocation counts are read after the live map: every sample found
 * live was counted before it was inserted, so none is in use that the
 * counts have not seen allocated. In use is the sum of the age buckets. */
static void read_allocated(struct dump_state *d)
{
	for (size_t i = 0; i < d->n; i++) {
		struct snap *s = &d->snaps[i];
		struct stack_totals t;
		stack_read(s->rec, &t);
		s->samples = t.samples;
		s->al_objs = t.objs;
		s->al_bytes = t.bytes;
		for (unsigned b = 0; b < AGE_BUCKETS; b++) {
			s->in_objs += s->ages[b][0];
			s->in_bytes += s->ages[b][1];
		}
		reader_pair(s->in_objs, s->in_bytes, &s->in_c, &s->in_b);
		reader_pair(s->al_objs, s->al_bytes, &s->al_c, &s->al_b);
	}
}

static void kv_u64(struct outbuf *o, const char *key, uint64_t v)
{
	out_str(o, "# ");
	out_str(o, key);
	out_str(o, ": ");
	out_u64(o, v);
	out_str(o, "\n");
}

static void kv_str(struct outbuf *o, const char *key, const char *v)
{
	out_str(o, "# ");
	out_str(o, key);
	out_str(o, ": ");
	out_str(o, v);
	out_str(o, "\n");
}

static void kv_fixed(struct outbuf *o, const char *key, double v)
{
	out_str(o, "# ");
	out_str(o, key);
	out_str(o, ": ");
	out_fixed3(o, v);
	out_str(o, "\n");
}

/* Reads a small /proc file into buf (NUL-terminated); its length. */
static size_t read_proc(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	if (fd < 0) {
		buf[0] = '\0';
		return 0;
	}
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return len;
}

static uint64_t rss_bytes(void)
{
	char buf[128];
	read_proc("/proc/self/statm", buf, sizeof(buf));
	const char *p = strchr(buf, ' ');
	uint64_t pages = 0;
	for (p = p ? p + 1 : buf; *p >= '0' && *p <= '9'; p++)
		pages = pages * 10 + (uint64_t)(*p - '0');
	return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void put_cmdline(struct outbuf *o)
{
	char buf[4096];
	size_t len = read_proc("/proc/self/cmdline", buf, sizeof(buf));
	while (len && buf[len - 1] == '\0')
		len--;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0' || buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[len] = '\0';
	kv_str(o, "cmdline", buf);
}

static int put_build_id(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct outbuf *o = arg;
	char exe[4096];
	const char *path = info->dlpi_name;
	(void)size;
	if (!path || !*path) {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		path = exe;
	}
	if (path[0] != '/')
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		const char *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
			const char *name = p + sizeof(*nh);
			const unsigned char *desc =
			    (const unsigned char *)name + ((nh->n_namesz + 3) & ~3u);
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    memcmp(name, "GNU", 4) == 0 &&
			    (const char *)desc + nh->n_descsz <= end) {
				out_str(o, "# build_id: ");
				out_str(o, path);
				out_str(o, " ");
				for (unsigned j = 0; j < nh->n_descsz; j++) {
					char hx[2] = {"0123456789abcdef"[desc[j] >> 4],
						      "0123456789abcdef"[desc[j] & 15]};
					out_bytes(o, hx, 2);
				}
				out_str(o, "\n");
				return 0;
			}
			p = (const char *)desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 0;
}

static void put_pair_line(struct outbuf *o, uint64_t c, uint64_t b,
			  uint64_t ac, uint64_t ab)
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

static void put_header(struct outbuf *o, const struct dump_state *d,
		       const char *trigger, unsigned seq)
{
	uint64_t in_c = 0, in_b = 0, al_c = 0, al_b = 0, live = 0, total = 0;
	double in_o = 0, in_y = 0, al_o = 0, al_y = 0;
	for (size_t i = 0; i < d->n; i++) {
		const struct snap *s = &d->snaps[i];
		in_c += s->in_c, in_b += s->in_b, al_c += s->al_c, al_b += s->al_b;
		in_o += s->in_objs, in_y += s->in_bytes;
		al_o += s->al_objs, al_y += s->al_bytes;
		live += s->live_samples;
		total += s->samples;
	}
	if (al_c == in_c && al_b == in_b)
		al_b++; /* readers offer alloc_* only when they differ */
	out_str(o, "heap profile: ");
	put_pair_line(o, in_c, in_b, al_c, al_b);
	out_str(o, " heap_v2/");
	out_u64(o, ht_config.rate);
	out_str(o, "\n");

	struct timespec now;
	char exe[4096];
	clock_gettime(CLOCK_REALTIME, &now);
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';

	kv_u64(o, "heaptrace", 1);
	kv_u64(o, "pid", (uint64_t)getpid());
	kv_u64(o, "ppid", (uint64_t)getppid());
	kv_u64(o, "seq", seq);
	kv_u64(o, "time_unix_ns",
	       (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec);
	kv_u64(o, "start_unix_ns", tracer_start_unix_ns());
	kv_str(o, "trigger", trigger);
	kv_str(o, "exe", exe);
	put_cmdline(o);
	kv_u64(o, "rate", ht_config.rate);
	kv_u64(o, "seed", ht_config.seed);
	out_str(o, "# interval_s: ");
	out_fixed3(o, (double)ht_config.interval_ms / 1000.0);
	out_str(o, "\n");
	kv_u64(o, "max_frames", ht_config.max_frames);
	out_str(o, "# dump_signal: ");
	if (dumpsig_state() == DUMPSIG_NONE) {
		out_str(o, "none\n");
	} else {
		if (dumpsig_state() == DUMPSIG_LOST)
			out_str(o, "lost ");
		out_u64(o, (uint64_t)ht_config.signal);
		out_str(o, "\n");
	}
	kv_str(o, "unwinder", unwind_name());
	kv_u64(o, "unwind_handed_over", unwind_handed_over());
	kv_u64(o, "rss_bytes", rss_bytes());
	kv_fixed(o, "inuse_objects", in_o);
	kv_fixed(o, "inuse_bytes", in_y);
	kv_fixed(o, "alloc_objects", al_o);
	kv_fixed(o, "alloc_bytes", al_y);
	kv_u64(o, "samples_live", live);
	kv_u64(o, "samples_total", total);
	kv_u64(o, "stacks", d->n);
	kv_u64(o, "stack_capacity", ht_stacks.limit);
	kv_u64(o, "live_capacity", ht_live.capacity);
	kv_u64(o, "dropped_stack_table", atomic_load(&ht_stacks.dropped_full));
	kv_u64(o, "dropped_live_map", atomic_load(&ht_live.dropped));
	kv_u64(o, "dropped_busy", atomic_load(&ht_stacks.dropped_busy));
	kv_u64(o, "tracer_bytes", arena_resident_bytes());
	kv_u64(o, "tracer_mapped_bytes", arena_mapped_bytes());
	out_str(o, "# age_buckets_s:");
	for (unsigned b = 0; b < ht_config.n_age_bounds; b++) {
		out_str(o, " ");
		out_u64(o, ht_config.age_bounds_s[b]);
	}
	out_str(o, "\n");
	if (tracer_error())
		kv_str(o, "error", tracer_error());
	/* The dumper may wait for a fork to pass: it is no allocation. */
	while (!forkguard_enter())
		sched_yield();
	dl_iterate_phdr(put_build_id, o);
	forkguard_leave();
}

static void put_samples(struct outbuf *o, const struct dump_state *d)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct snap *s = &d->snaps[i];
		put_pair_line(o, s->in_c, s->in_b, s->al_c, s->al_b);
		out_frames(o, s->rec->frames, s->rec->nframes);
		out_str(o, "\n");
		if (!s->live_samples)
			continue;
		out_str(o, "# ages:");
		for (unsigned b = 0; b <= ht_config.n_age_bounds; b++) {
			out_str(o, " ");
			out_u64(o, (uint64_t)llround(s->ages[b][0]));
			out_str(o, " ");
			out_u64(o, (uint64_t)llround(s->ages[b][1]));
		}
		out_str(o, "\n");
	}
}

static void put_maps(struct outbuf *o)
{
	out_str(o, "\nMAPPED_LIBRARIES:\n");
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[16384];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		out_bytes(o, buf, (size_t)n);
	}
	close(fd);
}

static int write_file(int fd, struct dump_state *d, const char *trigger,
		      unsigned seq)
{
	struct outbuf o;
	outbuf_start(&o, fd, out_buf, OUT_BUFFER);
	if (ht_config.compress) {
		o.err = gzout_start();
		o.filter = gzout_write;
	}
	put_header(&o, d, trigger, seq);
	put_samples(&o, d);
	threads_put(&o);
	put_maps(&o);
	out_flush(&o);
	if (ht_config.compress && !o.err)
		o.err = gzout_finish(fd);
	return o.err;
}

/* The temporary's name is predictable and the directory may be /tmp: it
 * is created O_EXCL (which never follows a symlink, O_NOFOLLOW says so
 * again), and a name someone else holds is left alone for another with a
 * random part. The mode is HEAPTRACE_DUMP_MODE less the umask. */
static int create_temporary(int dirfd, const char *name, char *tmp,
			    size_t size)
{
	ht_snprintf(tmp, size, ".%s.tmp", name);
	for (int tries = 0; tries < 8; tries++) {
		int fd = openat(dirfd, tmp,
				O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				(mode_t)ht_config.dump_mode);
		if (fd >= 0 || errno != EEXIST)
			return fd < 0 ? -errno : fd;
		uint32_t r;
		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
			r = (uint32_t)tracer_now_ticks() * 2654435761u + (uint32_t)tries;
		ht_snprintf(tmp, size, ".%s.%x.tmp", name, r);
	}
	return -EEXIST;
}

int dump_write(const char *trigger, unsigned seq, char *path, size_t size)
{
	struct dump_state d = {0};
	char name[64], tmp[96];
	dumpdir_place place;
	int err;

	if (snapshot(&d))
		return ENOMEM;
	d.now = tracer_now_ticks();
	livemap_foreach(&ht_live, add_live, &d);
	read_allocated(&d);

	dump_file_name(getpid(), seq, name, sizeof(name));
	int dirfd = dumpdir_open(&place);
	if (dirfd < 0)
		return -dirfd;
	int fd = create_temporary(dirfd, name, tmp, sizeof(tmp));
	if (fd < 0) {
		dirfd = dumpdir_refused(dirfd, -fd, &place);
		if (dirfd < 0)
			return -dirfd;
		fd = create_temporary(dirfd, name, tmp, sizeof(tmp));
	}
	if (fd < 0) {
		err = -fd;
	} else {
		err = write_file(fd, &d, trigger, seq);
		if (close(fd) && !err)
			err = errno;
		if (!err && renameat(dirfd, tmp, dirfd, name))
			err = errno;
		if (err)
			unlinkat(dirfd, tmp, 0);
	}
	close(dirfd);
	if (err)
		return err;
	dumpdir_wrote(place);
	dumpdir_path(place, path, size);
	size_t len = strlen(path);
	ht_snprintf(path + len, size - len, "/%s", name);
	return 0;
}

void dump_file_name(int pid, unsigned seq, char *name, size_t size)
{
	ht_snprintf(name, size, "heaptrace.%d.%04u.heap%s", pid, seq,
		    ht_config.compress ? ".gz" : "");
}
