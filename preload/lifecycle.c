/* Start-up and fork, in one place (the order and the hook convention are
 * in lifecycle.h).
 *
 * Start-up has two halves. The tracing core (configuration, tables,
 * capture buffers, the frame walker, the choice of how new samples) is
 * brought up by the first allocation call once the environment is set
 * (sampler.c): the loader runs the constructors of the libraries loaded
 * after heaptrace (the program's own) before heaptrace's, and what they
 * allocate is then traced too. Everything in it is safe inside a malloc
 * call. The rest waits for the constructor, which runs before main() and
 * before any thread of the program exists, outside any malloc call: the
 * dlopen of libunwind, the rewrite of the environment for exec, threads
 * (dumper, server), signals and fork handlers. */
#include "lifecycle.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "config.h"
#include "cxxnew.h"
#include "dumper.h"
#include "dumpreq.h"
#include "dumpsig.h"
#include "exec_env.h"
#include "forkguard.h"
#include "framebuf.h"
#include "profile.h"
#include "real.h"
#include "retention.h"
#include "runwatch.h"
#include "sampler.h"
#include "server.h"
#include "thread_state.h"
#include "threads.h"
#include "tracer.h"
#include "unwind.h"

void lifecycle_prefork(void)
{
	int was = guard_enter();
	server_prefork();
	profile_prefork();
	dumper_prefork();
	threads_prefork();
	forkguard_prefork();
	guard_restore(was);
}

void lifecycle_postfork_parent(void)
{
	int was = guard_enter();
	forkguard_postfork_parent();
	threads_postfork_parent();
	dumper_postfork_parent();
	profile_postfork_parent();
	server_postfork_parent();
	guard_restore(was);
}

void lifecycle_postfork_child(void)
{
	int was = guard_enter();
	forkguard_postfork_child();
	threads_postfork_child();
	profile_postfork_child();
	tracer_postfork_child();
	framebuf_postfork_child();
	retention_postfork_child();
	dumpsig_postfork_child();
	dumpreq_init(); /* nothing pending in the child */
	dumper_postfork_child(); /* starts the child's dumper thread */
	server_postfork_child(); /* and its server thread, last */
	guard_restore(was);
}

/* Set (release) when the core is up, by whichever thread brought it up. */
static _Atomic int core_up;

/* The core, with the guard raised, by the one thread whose tracer_begin()
 * succeeded. Sampling starts here when the frame walker can take stacks
 * on its own; otherwise (HEAPTRACE_UNWIND=libunwind) it starts in the
 * constructor, once libunwind is loaded, and until then allocations are
 * counted as untraced. */
static void start_core(void)
{
	if (!ht_real.malloc)
		real_resolve();
	config_load();
	framebuf_init(ht_config.max_frames + UNWIND_OWN_FRAMES);
	if (tracer_init() == 0) {
		cxxnew_init(); /* before any sample: it chooses how new samples */
		if (unwind_walker_on())
			tracer_on();
	}
	atomic_store_explicit(&core_up, 1, memory_order_release);
}

int lifecycle_start_early(void)
{
	if (tracer_begin()) {
		int was = guard_enter();
		start_core();
		guard_restore(was);
	}
	return tracer_state();
}

__attribute__((constructor)) static void lifecycle_start(void)
{
	int was = guard_enter();
	if (tracer_begin())
		start_core(); /* no allocation came first */
	/* Another thread (one a library's constructor started) may be
	 * bringing the core up: the rest needs its configuration. */
	while (!atomic_load_explicit(&core_up, memory_order_acquire))
		sched_yield();
	exec_env_apply();
	runwatch_start();
	unwind_load();
	tracer_on(); /* if it is not on yet, and has not failed */
	/* Dumps are written even when sampling failed: they say why. */
	dumpreq_init();
	dumper_start();
	dumpsig_install(); /* a signal lost now is dumped by the thread */
	server_start();
	pthread_atfork(lifecycle_prefork, lifecycle_postfork_parent,
		       lifecycle_postfork_child);
	guard_restore(was);
}
