/* The dumper thread waits for requests (dumpreq.h), with the time of the
 * next periodic dump as the deadline. The dump signal's handler
 * (dumpsig.c) only posts a request, so the dump itself never runs in
 * signal context. Dumps from the exit hook and from heaptrace_dump() run
 * in the calling thread; one mutex keeps any two dumps from interleaving.
 *
 * A pending `signal_lost` dump is taken, and written, under that mutex
 * before whatever dump holds it next: so it is always written, and always
 * before the exit dump, whichever thread gets the mutex first.
 *
 * Fork (lifecycle.h): the mutex is held across fork, so a fork waits for a
 * dump in progress, and the child never inherits one half-written. The
 * child gets its own numbering and a new dumper thread,
 * started from its fork hook: the child is single-threaded there and glibc
 * has already reset its allocator and thread-stack locks. */
#include "dumper.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "dump.h"
#include "dumpdir.h"
#include "dumpreq.h"
#include "export.h"
#include "forklock.h"
#include "log.h"
#include "ownthread.h"
#include "real.h"
#include "retention.h"
#include "runwatch.h"
#include "thread_state.h"
#include "triggers.h"


#define SWEEP_MS 60000
static struct fork_lock dump_lock = FORK_LOCK_INIT;
static _Thread_local int holding; /* at or inside dump_lock (forklock.h) */
static unsigned next_seq = 1;
static int write_failing; /* the last dump failed; said once per streak */
static int exited;        /* the exit dump is written: no more after it */
static _Atomic unsigned long dumps_written; /* by this process */

/* Under dump_lock: numbering, retention and what is said about failures
 * (once per streak of failing dumps, and once when they work again). */
static void account(int err)
{
	char dir[4200];
	dumpdir_next(dir, sizeof(dir));
	if (err == 0) {
		retention_add(next_seq);
		next_seq++;
		atomic_fetch_add_explicit(&dumps_written, 1,
					  memory_order_relaxed);
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

/* Under dump_lock: one dump, unless the exit dump is written; its path
 * into path. */
static int write_locked(const char *trigger, int final, char *path,
			size_t size)
{
	if (exited)
		return ECANCELED;
	/* The peak dump is outside the series: one file, replaced. */
	int peak = strcmp(trigger, "peak") == 0;
	int err = dump_write(trigger, peak ? DUMP_SEQ_PEAK : next_seq, path,
			     size);
	if (!peak || err)
		account(err);
	if (!peak && !err)
		runwatch_dumped(path);
	exited = final;
	return err;
}

/* Writes a pending signal_lost dump, then one by trigger (none if NULL);
 * callers hold nothing. Returns 0 or an errno value, of the last dump. The
 * exit dump is final: none is written after it, even while the process is
 * still tearing down.
 *
 * A write past RLIMIT_FSIZE raises SIGXFSZ, whose default action kills the
 * process. Dumps also run on the program's own threads (exit, API), so the
 * signal is blocked around the write, which then fails with EFBIG, and a
 * SIGXFSZ raised meanwhile is taken off the thread before unblocking. */
static int dump_now(const char *trigger, int final, char *path, size_t size)
{
	int saved_errno = errno, was = guard_enter(), err = 0;
	char lost_path[4200];
	sigset_t xfsz, old;
	sigemptyset(&xfsz);
	sigaddset(&xfsz, SIGXFSZ);
	pthread_sigmask(SIG_BLOCK, &xfsz, &old);
	fork_lock_take(&dump_lock, &holding);
	if (dumpreq_take(DUMPREQ_SIGNAL_LOST))
		err = write_locked("signal_lost", 0, lost_path,
				   sizeof(lost_path));
	if (trigger)
		err = write_locked(trigger, final, path, size);
	fork_lock_drop(&dump_lock, &holding);
	guard_restore(was);
	if (err == EFBIG && !sigismember(&old, SIGXFSZ)) {
		struct timespec zero = {0, 0};
		sigtimedwait(&xfsz, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved_errno;
	return err;
}

/* A dump with nobody waiting for its path. */
static int dump_quiet(const char *trigger, int final)
{
	char path[4200];
	return dump_now(trigger, final, path, sizeof(path));
}

int dumper_request(const char *trigger, char *path, size_t size)
{
	return dump_now(trigger, 0, path, size);
}

unsigned long dumper_dumps_written(void)
{
	return atomic_load_explicit(&dumps_written, memory_order_relaxed);
}

void dumper_lock(void)
{
	fork_lock_take(&dump_lock, &holding);
}

void dumper_unlock(void)
{
	fork_lock_drop(&dump_lock, &holding);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *dumper_main(void *arg)
{
	(void)arg;
	guard_enter(); /* for the thread's life */
	uint64_t interval = ht_config.interval_ms;
	uint64_t next = interval ? now_ms() + interval : 0;
	uint64_t next_sweep = now_ms() + SWEEP_MS, soon = now_ms();
	for (;;) {
		dumpreq_wait(soon && (!next || soon < next) ? soon : next);
		if (now_ms() >= next_sweep) {
			/* forked children that _exit mid-dump leave temporaries */
			retention_sweep_stale();
			next_sweep = now_ms() + SWEEP_MS;
		}
		if (dumpreq_take(DUMPREQ_SIGNAL))
			dump_quiet("signal", 0);
		if (dumpreq_pending(DUMPREQ_SIGNAL_LOST))
			dump_quiet(NULL, 0);
		if (interval && now_ms() >= next) {
			dump_quiet("interval", 0);
			/* Skip missed ticks rather than dumping in a burst. */
			uint64_t now = now_ms();
			while (next <= now)
				next += interval;
		}
		dumpreq_take(DUMPREQ_TRIGGER); /* triggers_due looks itself */
		unsigned due = triggers_due(now_ms(), &soon);
		if (due & TRIGGER_PEAK) {
			dump_quiet("peak", 0);
			triggers_peak_done(now_ms());
		}
		if (due & TRIGGER_RSS)
			dump_quiet("rss_limit", 0);
		if (due & TRIGGER_ALLOC)
			dump_quiet("alloc_step", 0);
	}
	return NULL;
}

static void start_thread(void)
{
	if (ownthread_start(dumper_main, "heaptrace"))
		ht_log("cannot start the dump thread; signal and periodic dumps "
		       "are off");
}

static void at_exit_dump(void)
{
	if (ht_config.on_exit)
		dump_quiet("exit", 1);
}

void dumper_prefork(void)
{
	fork_lock_prefork(&dump_lock, &holding);
}

void dumper_postfork_parent(void)
{
	fork_lock_postfork(&dump_lock);
}

/* The child numbers its own dumps, unless the fork came from a handler
 * that interrupted this thread's own dump, which goes on in the child. */
void dumper_postfork_child(void)
{
	if (dump_lock.prefork_took) {
		next_seq = 1;
		write_failing = 0;
		exited = 0;
		atomic_store(&dumps_written, 0);
	}
	fork_lock_postfork(&dump_lock);
	triggers_start();
	start_thread();
}

void dumper_start(void)
{
	retention_sweep_stale();
	triggers_start();
	start_thread();
	atexit(at_exit_dump);
}

/* The explicit API: a dump now, from the calling thread. 0 on success,
 * else an errno value. Programs find it with dlsym(RTLD_DEFAULT,
 * "heaptrace_dump") and so need not link against heaptrace. */
HT_EXPORT int heaptrace_dump(void)
{
	return dump_quiet("api", 0);
}
