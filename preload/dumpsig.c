/* Interposes sigaction() and signal() only to watch the dump signal. The
 * program always wins: a handler it installs, before heaptrace starts (a
 * library initialised earlier) or after, is installed exactly as asked, and
 * heaptrace stops dumping on that signal. It says so once on stderr, and
 * writes a dump at once (trigger `signal_lost`) whose `# dump_signal:` line
 * lets `heaptrace dump` refuse to send a signal the program now uses for
 * something else. If the program puts heaptrace's handler back (saved from
 * an earlier sigaction), heaptrace owns the signal again.
 *
 * Only the process that installed the handler counts: between vfork() and
 * exec a child shares our memory but has its own signal dispositions, and
 * resetting them there (as Python's subprocess and posix_spawn callers do)
 * is the child's business, not a loss for the parent.
 *
 * Nor is a fork()ed child putting the signal back to SIG_DFL or SIG_IGN the
 * program taking it: git's run-command, for one, resets every handled
 * signal between fork and exec, so that none runs the parent's handler in
 * the child. Such a child stops dumping on the signal (its dumps say so,
 * and `heaptrace dump` will not send it) but says nothing and writes no
 * `signal_lost` dump; only a handler of the program's own, or any change
 * in the process that installed heaptrace's handler, is told. */
#include "dumpsig.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "config.h"
#include "dumpreq.h"
#include "export.h"
#include "log.h"
#include "real.h"


static _Atomic int state = DUMPSIG_NONE;
static _Atomic int told; /* this loss was said, and dumped */
static pid_t owner;      /* the process whose dispositions state describes */
static pid_t installer;  /* the process that installed heaptrace's handler */

/* Async-signal-safe: only a request posted (dumpreq.h). */
static void on_dump_signal(int sig)
{
	int saved = errno;
	(void)sig;
	dumpreq_post(DUMPREQ_SIGNAL);
	errno = saved;
}

/* when: what is said, once; NULL to lose the signal silently. */
static void lost(const char *when)
{
	atomic_store(&state, DUMPSIG_LOST);
	if (!when || atomic_exchange(&told, 1))
		return;
	ht_log("the program handles signal %d itself (%s); heaptrace no longer "
	       "dumps on it: set HEAPTRACE_SIGNAL to a free signal, or call "
	       "heaptrace_dump()",
	       ht_config.signal, when);
	dumpreq_post(DUMPREQ_SIGNAL_LOST);
}

void dumpsig_install(void)
{
	int sig = ht_config.signal;
	if (!sig)
		return;
	owner = installer = getpid();
	struct sigaction cur, sa = {0};
	if (ht_real.sigaction(sig, NULL, &cur) == 0 &&
	    cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN) {
		lost("its handler was installed before heaptrace started");
		return;
	}
	sa.sa_handler = on_dump_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (ht_real.sigaction(sig, &sa, NULL) == 0)
		atomic_store(&state, DUMPSIG_OWNED);
}

enum dumpsig_state dumpsig_state(void)
{
	return atomic_load(&state);
}

void dumpsig_postfork_child(void)
{
	owner = getpid(); /* fork copies the dispositions: same state */
}

/* Called before the program's new disposition takes effect. */
static void watch(int sig, void (*handler)(int))
{
	if (!sig || sig != ht_config.signal || !dumpsig_state() ||
	    getpid() != owner)
		return;
	if (handler == on_dump_signal) {
		atomic_store(&state, DUMPSIG_OWNED);
		atomic_store(&told, 0); /* a later loss is told again */
	} else if (owner != installer && (handler == SIG_DFL || handler == SIG_IGN))
		lost(NULL);
	else
		lost("it installed a handler after heaptrace started");
}

HT_EXPORT int sigaction(int sig, const struct sigaction *act,
			struct sigaction *old)
{
	if (!ht_real.sigaction)
		real_resolve();
	int rc = ht_real.sigaction(sig, act, old);
	if (rc == 0 && act)
		watch(sig, act->sa_handler);
	return rc;
}

HT_EXPORT void (*signal(int sig, void (*handler)(int)))(int)
{
	if (!ht_real.signal)
		real_resolve();
	void (*old)(int) = ht_real.signal(sig, handler);
	if (old != SIG_ERR)
		watch(sig, handler);
	return old;
}
