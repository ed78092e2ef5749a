/* See ownthread.h. */
#include "ownthread.h"

#include <pthread.h>
#include <signal.h>

#include "real.h"

int ownthread_start(void *(*fn)(void *), const char *name)
{
	sigset_t all, old;
	pthread_t id;
	/* The thread inherits a mask with every signal blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = ht_real.pthread_create(&id, NULL, fn, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return rc;
	pthread_setname_np(id, name);
	ht_real.pthread_detach(id); /* not the registry's: heaptrace's own */
	return 0;
}
