/* One steady leak among churning sites of larger volume, for
 * `heaptrace leaks` at the default sampling rate. The program runs in
 * ticks paced by the clock and asks for a dump (heaptrace_dump()) after
 * each one (tests/progs/ticks.h), so the series is evenly spaced in time.
 * Only the leak and the warm cache keep blocks for a second or more.
 *
 * Per tick:
 *   leak_session  1 MiB in 4 KiB blocks, never freed          (the leak)
 *   churn_ring    replaces 2 x 768 blocks of 32 KiB in a ring  (24 MiB, flat)
 *   churn_wave    holds 0..15 MiB of 64 KiB blocks, a wave of 6 ticks
 *   churn_burst   0..5 MiB of 100 KiB blocks, a sawtooth of 5 ticks
 *   churn_temp    20 blocks of 1 MiB, freed at once
 *   warm_cache    3 MiB of 16 KiB blocks in the first 4 ticks, then kept:
 *                 growth that stopped
 *
 * usage: leak_sites [TICKS [TICK_MS]]   (default 20 ticks of 150 ms) */
#include <stdlib.h>
#include <string.h>

#include "ticks.h"

#define RING 768
#define WAVE_MAX 256
#define BURST_MAX 50

static void *ring[RING];
static void *wave[WAVE_MAX];
static void *burst[BURST_MAX];
static int ring_next, wave_held, burst_held;
void *volatile sink;

void leak_session(void)
{
	for (int i = 0; i < 256; i++) {
		char *p = malloc(4096);
		memset(p, 1, 4096);
		sink = p;
	}
}

void churn_ring(void)
{
	for (int i = 0; i < 2 * RING; i++) {
		free(ring[ring_next]);
		ring[ring_next] = malloc(32768);
		ring_next = (ring_next + 1) % RING;
	}
}

void churn_wave(int tick)
{
	/* WAVE_MAX / 2 * (1 + sin(tick * 2 pi / 6)); every block is freed
	 * within the period, so none lives a whole second */
	static const int level[6] = {128, 239, 239, 128, 17, 0};
	int target = level[tick % 6];
	while (wave_held < target)
		wave[wave_held++] = malloc(65536);
	while (wave_held > target)
		free(wave[--wave_held]);
}

void churn_burst(int tick)
{
	while (burst_held > 0)
		free(burst[--burst_held]);
	int n = tick % 5 * BURST_MAX / 4;
	while (burst_held < n)
		burst[burst_held++] = malloc(100 * 1024);
}

void churn_temp(void)
{
	for (int i = 0; i < 20; i++) {
		sink = malloc(1 << 20);
		free(sink);
	}
}

void warm_cache(void)
{
	for (int i = 0; i < 192; i++) {
		char *p = malloc(16384);
		memset(p, 2, 16384);
		sink = p;
	}
}

static void one_tick(int tick)
{
	leak_session();
	churn_ring();
	churn_wave(tick);
	churn_burst(tick);
	churn_temp();
	if (tick < 4)
		warm_cache();
}

int main(int argc, char **argv)
{
	return run_ticks(argc, argv, 20, 150, one_tick);
}
