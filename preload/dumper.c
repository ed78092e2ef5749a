/* The dumper thread sleeps on a semaphore, with the time of the next
 * periodic dump as the deadline. The dump signal's handler (dumpsig.c) only
 * sets a flag and posts the semaphore (both async-signal-safe), so the dump
 * itself never runs in signal context. A semaphore rather than a pipe or an
 * eventfd: daemons that close every descriptor at start-up cannot take it
 * away, and a reused descriptor number can never receive our bytes. Dumps from the exit hook
 * and from heaptrace_dump() run in the calling thread; one mutex keeps any
 * two dumps from interleaving.
 *
 * After fork the child gets a fresh semaphore, its own numbering and a new
 * dumper thread, started from the fork handler: the child is single-
 * threaded there and glibc has already reset its allocator and thread-stack
 * locks. */
#include "dumper.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "dump.h"
#include "dumpdir.h"
#include "dumpsig.h"
#include "export.h"
#include "forkguard.h"
#include "log.h"
#include "profile.h"
#include "real.h"
#include "retention.h"
#include "sampler.h"
#include "threads.h"
#include "tracer.h"
#include "triggers.h"


static sem_t wake;
#define SWEEP_MS 60000
static _Atomic int signal_pending, signal_lost_pending;
static pthread_mutex_t dump_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned next_seq = 1;
static int write_failing; /* the last dump failed; said once per streak */
static int exited;        /* the exit dump is written: no more after it */

/* Under dump_lock: numbering, retention and what is said about failures
 * (once per streak of failing dumps, and once when they work again). */
static void account(int err)
{
	char dir[4200];
	dumpdir_next(dir, sizeof(dir));
	if (err == 0) {
		retention_add(next_seq);
		next_seq++;
		if (write_failing)
			ht_log("dumps to %s work again", dir);
		write_failing = 0;
	} else if (!write_failing) {
		write_failing = 1;
		ht_log("cannot write a dump in %s (%s); this dump is skipped "
		       "and the next one will try again",
		       dir, strerror(err));
	}
}

/* Writes one dump; callers hold nothing. Returns 0 or an errno value. The
 * exit dump is final: none is written after it, even while the process is
 * still tearing down.
 *
 * A write past RLIMIT_FSIZE raises SIGXFSZ, whose default action kills the
 * process. Dumps also run on the program's own threads (exit, API), so the
 * signal is blocked around the write, which then fails with EFBIG, and a
 * SIGXFSZ raised meanwhile is taken off the thread before unblocking. */
static int dump_now(const char *trigger, int final)
{
	struct ht_thread *t = &ht_thread;
	int saved_errno = errno, saved_guard = t->guard, err = ECANCELED;
	char path[4200];
	sigset_t xfsz, old;
	sigemptyset(&xfsz);
	sigaddset(&xfsz, SIGXFSZ);
	pthread_sigmask(SIG_BLOCK, &xfsz, &old);
	t->guard = 1;
	pthread_mutex_lock(&dump_lock);
	if (!exited) {
		/* The peak dump is outside the series: one file, replaced. */
		int peak = strcmp(trigger, "peak") == 0;
		err = dump_write(trigger, peak ? DUMP_SEQ_PEAK : next_seq, path,
				 sizeof(path));
		if (!peak || err)
			account(err);
		exited = final;
	}
	pthread_mutex_unlock(&dump_lock);
	t->guard = saved_guard;
	if (err == EFBIG && !sigismember(&old, SIGXFSZ)) {
		struct timespec zero = {0, 0};
		sigtimedwait(&xfsz, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved_errno;
	return err;
}

void dumper_lock(void)
{
	pthread_mutex_lock(&dump_lock);
}

void dumper_unlock(void)
{
	pthread_mutex_unlock(&dump_lock);
}

/* Async-signal-safe: a flag and a semaphore post. */
void dumper_wake(enum dumper_wake_reason why)
{
	if (why != DUMPER_WAKE_TRIGGER)
		atomic_store_explicit(why == DUMPER_WAKE_SIGNAL
					  ? &signal_pending
					  : &signal_lost_pending,
				      1, memory_order_relaxed);
	sem_post(&wake);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for a post, or until the monotonic time deadline_ms (0 = none). */
static void wait_for_wake(uint64_t deadline_ms)
{
	if (!deadline_ms) {
		sem_wait(&wake);
		return;
	}
	struct timespec ts = {(time_t)(deadline_ms / 1000),
			      (long)(deadline_ms % 1000) * 1000000};
	sem_clockwait(&wake, CLOCK_MONOTONIC, &ts);
}

static void *dumper_main(void *arg)
{
	(void)arg;
	ht_thread.guard = 1;
	uint64_t interval = ht_config.interval_ms;
	uint64_t next = interval ? now_ms() + interval : 0;
	uint64_t next_sweep = now_ms() + SWEEP_MS, soon = now_ms();
	for (;;) {
		wait_for_wake(soon && (!next || soon < next) ? soon : next);
		if (now_ms() >= next_sweep) {
			/* forked children that _exit mid-dump leave temporaries */
			retention_sweep_stale();
			next_sweep = now_ms() + SWEEP_MS;
		}
		/* Several signals while one dump runs make one more dump. */
		while (sem_trywait(&wake) == 0)
			;
		if (atomic_exchange(&signal_pending, 0))
			dump_now("signal", 0);
		if (atomic_exchange(&signal_lost_pending, 0))
			dump_now("signal_lost", 0);
		if (interval && now_ms() >= next) {
			dump_now("interval", 0);
			/* Skip missed ticks rather than dumping in a burst. */
			uint64_t now = now_ms();
			while (next <= now)
				next += interval;
		}
		unsigned due = triggers_due(now_ms(), &soon);
		if (due & TRIGGER_PEAK) {
			dump_now("peak", 0);
			triggers_peak_done(now_ms());
		}
		if (due & TRIGGER_RSS)
			dump_now("rss_limit", 0);
		if (due & TRIGGER_ALLOC)
			dump_now("alloc_step", 0);
	}
	return NULL;
}

static void start_thread(void)
{
	sigset_t all, old;
	pthread_t id;
	sem_init(&wake, 0, 0);
	/* The thread inherits a mask with every signal blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = ht_real.pthread_create(&id, NULL, dumper_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		ht_log("cannot start the dump thread; signal and periodic dumps "
		       "are off");
		return;
	}
	pthread_setname_np(id, "heaptrace");
	pthread_detach(id);
}

static void at_exit_dump(void)
{
	if (ht_config.on_exit)
		dump_now("exit", 1);
}

static void in_child(void)
{
	forkguard_done();
	pthread_mutex_init(&dump_lock, NULL);
	profile_forked();
	next_seq = 1;
	write_failing = 0;
	exited = 0;
	atomic_store(&signal_pending, 0);
	atomic_store(&signal_lost_pending, 0);
	tracer_forked();
	triggers_start();
	threads_forked();
	retention_forked();
	dumpsig_forked();
	start_thread();
}

void dumper_start(void)
{
	retention_sweep_stale();
	triggers_start();
	start_thread();
	dumpsig_install();
	atexit(at_exit_dump);
	pthread_atfork(forkguard_prepare, forkguard_done, in_child);
}

/* The explicit API: a dump now, from the calling thread. 0 on success,
 * else an errno value. Programs find it with dlsym(RTLD_DEFAULT,
 * "heaptrace_dump") and so need not link against heaptrace. */
HT_EXPORT int heaptrace_dump(void)
{
	return dump_now("api", 0);
}
