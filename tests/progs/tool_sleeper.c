/* A long-running program for `heaptrace dump PID`: allocates, prints
 * "ready" and sleeps until killed (at most 60 s). With the argument
 * "reset-usr1" it first puts SIGUSR1 back to its default action (which
 * kills), as a program that installs its own signal handling might; with
 * "own-usr1" it installs a handler of its own that counts SIGUSR1s and
 * prints the count when it ends (on SIGTERM). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "sleeper.h"

void *held[16];

static void hold(void)
{
	for (int i = 0; i < 16; i++)
		held[i] = malloc(10000);
}

int main(int argc, char **argv)
{
	hold();
	if (argc > 1 && strcmp(argv[1], "reset-usr1") == 0)
		signal(SIGUSR1, SIG_DFL);
	if (argc > 1 && strcmp(argv[1], "own-usr1") == 0) {
		signal(SIGUSR1, count_usr1);
		signal(SIGTERM, on_term);
	}
	printf("ready\n");
	fflush(stdout);
	sleep_until_term();
	return held[0] == NULL;
}
