/* A long-running program for `heaptrace dump PID`: allocates, prints
 * "ready" and sleeps until killed (at most 60 s). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *held[16];

static void hold(void)
{
	for (int i = 0; i < 16; i++)
		held[i] = malloc(10000);
}

int main(void)
{
	hold();
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; i < 600; i++)
		usleep(100000);
	return held[0] == NULL;
}
