/* Dumps by amount. The heap estimate is kept on the sampled path only:
 * each recorded sample adds the bytes it stands for (n/p), each free of a
 * sample takes the same bytes back, so unsampled calls never come here and
 * the common path of malloc and free is unchanged. A thread whose sample
 * crosses a mark swaps the mark out (so one crossing posts once) and posts
 * the dumper's semaphore; the dumper thread decides and writes the dump,
 * never the program's thread, and arms the mark again.
 *
 * A peak is followed before it is dumped: the dumper looks again every
 * PEAK_POLL_MS and writes the dump once the heap has not grown for
 * PEAK_STABLE_MS (or has fallen below 90% of the highest it saw, or after
 * PEAK_SETTLE_MS in all), so that a spike made of many allocations is
 * dumped at its top, not at the first allocation past the mark; a program
 * descheduled for a moment mid-spike (a loaded machine) does not look
 * like a finished one. At most one peak dump is written every
 * PEAK_GAP_MS; only the newest is kept (dump.h: DUMP_SEQ_PEAK).
 *
 * The RSS limit is polled on the dumper thread every RSS_POLL_MS: one dump
 * when it is crossed upwards, armed again once the value falls below 90%
 * of the limit, so that a process hovering at its limit is dumped once. */
#include "triggers.h"

#include <stdatomic.h>
#include <string.h>

#include "config.h"
#include "dumpreq.h"
#include "log.h"
#include "procfs.h"

#define PEAK_GAP_MS 1000
#define PEAK_POLL_MS 20
#define PEAK_STABLE_MS 100
#define PEAK_SETTLE_MS 1000
#define RSS_POLL_MS 200
#define PEAK_OFF INT64_MAX
#define ALLOC_OFF UINT64_MAX

/* Written by every sampling thread: a cache line of their own. */
static struct {
	_Alignas(64) _Atomic int64_t inuse;
	_Atomic uint64_t allocated;
	_Atomic int64_t peak_arm;   /* inuse above this posts the dumper */
	_Atomic uint64_t alloc_arm; /* allocated above this posts it */
} amt = {.peak_arm = PEAK_OFF, .alloc_arm = ALLOC_OFF};

/* The dumper thread's own state. */
static int64_t peak_mark;     /* the heap at the last peak dump */
static int64_t peak_seen;     /* the highest heap seen while pending */
static uint64_t peak_since_ms, peak_rose_ms, peak_last_ms;
static int peak_pending;
static int rss_over, rss_off;
static uint64_t rss_next_ms, rss_cgroup_limit;
static char cgroup_dir[4200];

static int peak_on(void)
{
	return ht_config.peak_step_pct || ht_config.peak_step_bytes;
}

static void arm_peak(void)
{
	int64_t step = peak_mark / 100 * (int64_t)ht_config.peak_step_pct;
	if (step < (int64_t)ht_config.peak_step_bytes)
		step = (int64_t)ht_config.peak_step_bytes;
	atomic_store(&amt.peak_arm, peak_mark + step);
}

static void arm_alloc(void)
{
	uint64_t step = ht_config.alloc_step;
	atomic_store(&amt.alloc_arm, (atomic_load(&amt.allocated) / step + 1) * step);
}

void triggers_start(void)
{
	peak_mark = peak_seen = 0;
	peak_since_ms = peak_last_ms = 0;
	peak_pending = rss_over = 0;
	rss_next_ms = 0;
	if (peak_on())
		arm_peak();
	if (ht_config.alloc_step)
		arm_alloc();
}

void triggers_sampled(int64_t bytes, int live)
{
	if (live) {
		int64_t v = atomic_fetch_add_explicit(&amt.inuse, bytes,
						      memory_order_relaxed) + bytes;
		int64_t arm = atomic_load_explicit(&amt.peak_arm,
						   memory_order_relaxed);
		if (v > arm &&
		    atomic_compare_exchange_strong(&amt.peak_arm, &arm, PEAK_OFF))
			dumpreq_post(DUMPREQ_TRIGGER);
	}
	if (ht_config.alloc_step) {
		uint64_t v = atomic_fetch_add_explicit(&amt.allocated,
						       (uint64_t)bytes,
						       memory_order_relaxed) +
			     (uint64_t)bytes;
		uint64_t arm = atomic_load_explicit(&amt.alloc_arm,
						    memory_order_relaxed);
		if (v > arm &&
		    atomic_compare_exchange_strong(&amt.alloc_arm, &arm, ALLOC_OFF))
			dumpreq_post(DUMPREQ_TRIGGER);
	}
}

void triggers_freed(int64_t bytes)
{
	atomic_fetch_sub_explicit(&amt.inuse, bytes, memory_order_relaxed);
}

int64_t triggers_inuse(void)
{
	return atomic_load_explicit(&amt.inuse, memory_order_relaxed);
}

static uint64_t leading_uint(const char *s)
{
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	return v;
}

/* The cgroup v2 directory of this process and its memory.max, once; 0 and
 * one line when there is none to take a fraction of. */
static int cgroup_resolve(void)
{
	char buf[4200], path[4300];
	proc_read("/proc/self/cgroup", buf, sizeof(buf));
	const char *line = strncmp(buf, "0::", 3) == 0 ? buf : strstr(buf, "\n0::");
	if (line) {
		line += line[0] == '\n' ? 4 : 3;
		size_t n = strcspn(line, "\n");
		if (n > sizeof(cgroup_dir) - 16)
			n = sizeof(cgroup_dir) - 16;
		memcpy(cgroup_dir, "/sys/fs/cgroup", 14);
		memcpy(cgroup_dir + 14, line, n);
		cgroup_dir[14 + n] = '\0';
		ht_snprintf(path, sizeof(path), "%s/memory.max", cgroup_dir);
		if (proc_read(path, buf, sizeof(buf)) && buf[0] >= '0' &&
		    buf[0] <= '9')
			rss_cgroup_limit = leading_uint(buf) / 1000 *
					   ht_config.rss_limit_permille;
	}
	if (!rss_cgroup_limit)
		ht_log("HEAPTRACE_RSS_LIMIT=0.%03u is a share of the cgroup's "
		       "memory.max, and this process's cgroup has no limit; "
		       "the RSS limit is off",
		       ht_config.rss_limit_permille);
	return rss_cgroup_limit != 0;
}

/* The value compared with the limit, and the limit; 0 if off. */
static int rss_read(uint64_t *value, uint64_t *limit)
{
	if (ht_config.rss_limit_bytes) {
		*value = proc_rss_bytes();
		*limit = ht_config.rss_limit_bytes;
		return 1;
	}
	if (!rss_cgroup_limit && !cgroup_resolve()) {
		rss_off = 1;
		return 0;
	}
	char path[4300], buf[64];
	ht_snprintf(path, sizeof(path), "%s/memory.current", cgroup_dir);
	if (!proc_read(path, buf, sizeof(buf)))
		return 0;
	*value = leading_uint(buf);
	*limit = rss_cgroup_limit;
	return 1;
}

static void want(uint64_t *deadline, uint64_t at)
{
	if (!*deadline || at < *deadline)
		*deadline = at;
}

static unsigned peak_due(uint64_t now, uint64_t *deadline)
{
	if (!peak_pending) {
		if (!peak_on() || atomic_load(&amt.peak_arm) != PEAK_OFF)
			return 0;
		peak_pending = 1;
		peak_since_ms = peak_rose_ms = now;
		peak_seen = 0;
	}
	int64_t cur = triggers_inuse();
	if (cur <= peak_mark) { /* gone before it could be dumped */
		peak_pending = 0;
		arm_peak();
		return 0;
	}
	if (cur > peak_seen) {
		peak_seen = cur;
		peak_rose_ms = now;
	}
	int falling = cur < peak_seen - peak_seen / 10;
	if (!falling && now < peak_rose_ms + PEAK_STABLE_MS &&
	    now < peak_since_ms + PEAK_SETTLE_MS) {
		want(deadline, now + PEAK_POLL_MS); /* may still grow */
		return 0;
	}
	if (peak_last_ms && now < peak_last_ms + PEAK_GAP_MS) {
		want(deadline, peak_last_ms + PEAK_GAP_MS);
		return 0;
	}
	return TRIGGER_PEAK;
}

unsigned triggers_due(uint64_t now, uint64_t *deadline)
{
	*deadline = 0;
	unsigned due = peak_due(now, deadline);
	if (ht_config.alloc_step &&
	    atomic_load(&amt.alloc_arm) == ALLOC_OFF) {
		due |= TRIGGER_ALLOC;
		arm_alloc();
	}
	if ((ht_config.rss_limit_bytes || ht_config.rss_limit_permille) &&
	    !rss_off) {
		uint64_t value, limit;
		if (now >= rss_next_ms) {
			rss_next_ms = now + RSS_POLL_MS;
			if (rss_read(&value, &limit)) {
				if (!rss_over && value >= limit) {
					rss_over = 1;
					due |= TRIGGER_RSS;
				} else if (rss_over && value < limit - limit / 10) {
					rss_over = 0;
				}
			}
		}
		if (!rss_off)
			want(deadline, rss_next_ms);
	}
	return due;
}

void triggers_peak_done(uint64_t now)
{
	peak_mark = peak_seen;
	peak_last_ms = now;
	peak_pending = 0;
	arm_peak();
}
