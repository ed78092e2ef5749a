/* The clock-paced main loop of the leak programs (leak_sites.c,
 * leak_rank.c): TICKS ticks of TICK_MS each (argv[1], argv[2], or the
 * program's defaults), a dump asked for (heaptrace_dump()) at the end of
 * each, so that the series is evenly spaced in time whatever a tick's
 * allocations cost. Prints "N dumps, M failed". */
#ifndef HEAPTRACE_TEST_TICKS_H
#define HEAPTRACE_TEST_TICKS_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_ticks(int argc, char **argv, int ticks, int tick_ms,
		     void (*tick_fn)(int tick))
{
	if (argc > 1)
		ticks = atoi(argv[1]);
	double tick_s = (argc > 2 ? atoi(argv[2]) : tick_ms) / 1000.0;
	int (*dump)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "heaptrace_dump");
	int failed = 0;
	double start = now();
	for (int tick = 0; tick < ticks; tick++) {
		tick_fn(tick);
		double wait = start + (tick + 1) * tick_s - now();
		if (wait > 0) {
			struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
			nanosleep(&ts, NULL);
		}
		failed += !dump || dump() != 0;
	}
	printf("%d dumps, %d failed\n", ticks, failed);
	return 0;
}

#endif
