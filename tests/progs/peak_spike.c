/* A heap with one spike: 10 MiB held from hold_site for the whole run, and
 * once 200 MiB from spike_site, held for half a second and freed. With an
 * argument "touch" the spike's pages are written, so that RSS follows it
 * (the RSS limit test); 1 MiB blocks are above glibc's mmap threshold, so
 * freeing them gives the pages back. With "twice", the first spike is
 * 100 MiB and a second, 1.2 s after it is freed, 200 MiB from
 * second_spike_site: the peak file must then hold the second. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIB (1u << 20)

static void *held[10], *spike[200];

__attribute__((noinline)) void hold_site(void)
{
	for (unsigned i = 0; i < 10; i++)
		held[i] = malloc(MIB);
}

__attribute__((noinline)) void spike_site(int touch, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		spike[i] = malloc(MIB);
		if (touch && spike[i])
			memset(spike[i], 1, MIB);
	}
}

__attribute__((noinline)) void second_spike_site(void)
{
	for (unsigned i = 0; i < 200; i++)
		spike[i] = malloc(MIB);
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	int touch = argc > 1 && strcmp(argv[1], "touch") == 0;
	int twice = argc > 1 && strcmp(argv[1], "twice") == 0;
	hold_site();
	pause_ms(300);
	spike_site(touch, twice ? 100 : 200);
	pause_ms(500);
	for (unsigned i = 0; i < 200; i++) {
		free(spike[i]);
		spike[i] = NULL;
	}
	if (twice) {
		pause_ms(1200);
		second_spike_site();
		pause_ms(500);
		for (unsigned i = 0; i < 200; i++)
			free(spike[i]);
	}
	pause_ms(300);
	for (unsigned i = 0; i < 10; i++)
		free(held[i]);
	/* the exit dump comes after this: hold 10 MiB again, for it to show */
	hold_site();
	return 0;
}
