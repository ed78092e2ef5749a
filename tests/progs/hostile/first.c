/* A library with its own SIGUSR1 handler (tests/progs/hostile_sigown.c).
 * hostile_sigown links it (DT_NEEDED), and ld.so runs the constructors of
 * a program's needed libraries before those of LD_PRELOAD'ed ones: with
 * HOSTILE_EARLY=1 in the environment its constructor installs the handler
 * before heaptrace's constructor runs. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t handled;

void first_on_usr1(int sig)
{
	(void)sig;
	handled++;
}

int first_handled(void)
{
	return handled;
}

void first_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = first_on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
}

__attribute__((constructor)) static void first_early(void)
{
	const char *early = getenv("HOSTILE_EARLY");
	if (early && !strcmp(early, "1"))
		first_install();
}
