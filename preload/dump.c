/* The dump writer: a snapshot of the tables (snapshot.c) written as the
 * legacy heap profile of docs/format.md, header, samples, threads, maps. */
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
#include "mmaps.h"
#include "outbuf.h"
#include "procfs.h"
#include "rss.h"
#include "sampler.h"
#include "snapshot.h"
#include "stacktab.h"
#include "threads.h"
#include "tracer.h"
#include "unwind.h"

/* Scratch kept from one dump to the next (dumps are serialised by the
 * dumper's lock). */
#define OUT_BUFFER (1 << 20)
static struct snapshot dump_snap;
static char *out_buf;

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

static void put_cmdline(struct outbuf *o)
{
	char buf[4096];
	size_t len = proc_read("/proc/self/cmdline", buf, sizeof(buf));
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

static void put_header(struct outbuf *o, const struct snapshot *d,
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
	out_heap_counts(o, in_c, in_b, al_c, al_b);
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
	kv_u64(o, "rss_bytes", proc_rss_bytes());
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
	uint64_t untraced, untraced_bytes;
	sampler_untraced(&untraced, &untraced_bytes);
	out_str(o, "# untraced_before_start: ");
	out_u64(o, untraced);
	out_field_u64(o, untraced_bytes);
	out_str(o, "\n");
	kv_u64(o, "tracer_bytes", arena_resident_bytes());
	kv_u64(o, "tracer_mapped_bytes", arena_mapped_bytes());
	out_str(o, "# age_buckets_s:");
	for (unsigned b = 0; b < ht_config.n_age_bounds; b++) {
		out_field_u64(o, ht_config.age_bounds_s[b]);
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

static void put_samples(struct outbuf *o, const struct snapshot *d)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct snap *s = &d->snaps[i];
		out_sample_counts(o, s->in_c, s->in_b, s->al_c, s->al_b);
		out_frames(o, s->rec->frames, s->rec->nframes);
		out_str(o, "\n");
		out_zero_byte_objects(o, s->in_c, s->in_b, s->al_c, s->al_b);
		if (!s->live_samples)
			continue;
		out_str(o, "# ages:");
		for (unsigned b = 0; b <= ht_config.n_age_bounds; b++) {
			out_field_u64(o, (uint64_t)llround(s->ages[b][0]));
			out_field_u64(o, (uint64_t)llround(s->ages[b][1]));
		}
		out_str(o, "\n");
	}
}

static int write_file(int fd, struct snapshot *d, const char *trigger,
		      unsigned seq)
{
	struct outbuf o;
	outbuf_start(&o, fd, out_buf, OUT_BUFFER);
	if (ht_config.compress)
		o.err = gzout_begin(GZOUT_DUMP, &o);
	put_header(&o, d, trigger, seq);
	put_samples(&o, d);
	threads_put(&o);
	mmaps_put(&o);
	rss_put(&o);
	out_str(&o, "\nMAPPED_LIBRARIES:\n");
	proc_copy(&o, "/proc/self/maps");
	if (ht_config.compress)
		gzout_end(&o);
	out_flush(&o);
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
	char name[64], tmp[96];
	dumpdir_place place;
	int err;

	if ((!out_buf && !(out_buf = arena_map(OUT_BUFFER))) ||
	    snapshot_take(&dump_snap))
		return ENOMEM;

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
		err = write_file(fd, &dump_snap, trigger, seq);
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
	if (seq == DUMP_SEQ_PEAK)
		ht_snprintf(name, size, "heaptrace.%d.peak.heap%s", pid,
			    ht_config.compress ? ".gz" : "");
	else if (seq == DUMP_SEQ_ANY)
		ht_snprintf(name, size, "heaptrace.%d.NNNN.heap%s", pid,
			    ht_config.compress ? ".gz" : "");
	else
		ht_snprintf(name, size, "heaptrace.%d.%04u.heap%s", pid, seq,
			    ht_config.compress ? ".gz" : "");
}
