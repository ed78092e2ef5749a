/* A long-running program for `heaptrace dump PID`: allocates, prints
 * "ready" and sleeps until killed (at most 60 s). With the argument
 * "reset-usr1" it first puts SIGUSR1 back to its default action (which
 * kills), as a program that installs its own signal handling might. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

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
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; i < 600; i++)
		usleep(100000);
	return held[0] == NULL;
}
