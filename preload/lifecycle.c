/* Start-up and fork, in one place (the order and the hook convention are
 * in lifecycle.h). The constructor runs before main() and before any
 * thread of the program exists, outside any malloc call, so that dlopen
 * (the unwinder) and thread creation (the dumper) are safe there. */
#include "lifecycle.h"

#include <pthread.h>

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

__attribute__((constructor)) static void lifecycle_start(void)
{
	if (!tracer_begin())
		return;
	int was = guard_enter();
	if (!ht_real.malloc)
		real_resolve();
	config_load();
	exec_env_apply();
	runwatch_start();
	framebuf_init(ht_config.max_frames + UNWIND_OWN_FRAMES);
	if (tracer_init() == 0) {
		cxxnew_init(); /* before any sample: it chooses how new samples */
		tracer_on();
	}
	/* Dumps are written even when sampling failed: they say why. */
	dumpreq_init();
	dumper_start();
	dumpsig_install(); /* a signal lost now is dumped by the thread */
	server_start();
	pthread_atfork(lifecycle_prefork, lifecycle_postfork_parent,
		       lifecycle_postfork_child);
	guard_restore(was);
}
