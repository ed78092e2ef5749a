/* The end of the long-running test programs (tool_sleeper.c,
 * ctl_target.c): a count of the SIGUSR1s a handler of their own received,
 * and a sleep until SIGTERM (at most 60 s) that then prints "usr1 N". */
#ifndef HEAPTRACE_TEST_SLEEPER_H
#define HEAPTRACE_TEST_SLEEPER_H

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static volatile sig_atomic_t usr1_seen, stop;

static void count_usr1(int sig)
{
	(void)sig;
	usr1_seen++;
}

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* Until on_term ran, or 60 s; a SIGTERM without on_term installed ends the
 * program at once. */
static void sleep_until_term(void)
{
	for (int i = 0; i < 600 && !stop; i++)
		usleep(100000);
	printf("usr1 %d\n", (int)usr1_seen);
}

#endif
