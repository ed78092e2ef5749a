/* Several stacks that change in different ways, for the whole ranking of
 * `heaptrace leaks` (tests/test_leak_rank.py). Like leak_sites.c it runs in
 * ticks paced by the clock and asks for a dump after each one. The slow
 * leak starts from a large level, so that it holds more than the fast leak
 * at the end while growing at half its rate: ranking by size, or slowest
 * first, puts it first. Its growth is still well above what sampling at
 * the default rate could make of its level (leaks.py's noise rule). The
 * sawtooth's fitted growth (about 15 MiB over two of its periods) is far
 * above the small churner's, whose level only sampling moves.
 *
 * Per tick:
 *   fast_leak    6 MiB in 8 KiB blocks, never freed       (6 to 96 MiB)
 *   slow_leak    3 MiB in 8 KiB blocks, never freed, after 100 MiB at the
 *                first tick                               (103 to 148 MiB)
 *   flat_cache   40 MiB of 64 KiB blocks at the first tick, then kept
 *   sawtooth     4 MiB more of 32 KiB blocks each tick, all released
 *                every eighth tick                        (4 to 32 MiB)
 *   churner      replaces all of a ring of 64 blocks of 16 KiB (1 MiB)
 *
 * Blocks are not written: they cost address space and the sampler counts
 * them alike.
 *
 * usage: leak_rank [TICKS [TICK_MS]]   (default 16 ticks of 100 ms) */
#include <stdlib.h>

#include "ticks.h"

#define MIB (1 << 20)
#define RING 64
#define SAW_MAX (32 * MIB / 32768)

static void *ring[RING];
static void *saw[SAW_MAX];
static int saw_held;
void *volatile sink;

void fast_leak(void)
{
	for (int i = 0; i < 6 * MIB / 8192; i++)
		sink = malloc(8192);
}

void slow_leak(int tick)
{
	int blocks = (tick == 0 ? 103 : 3) * MIB / 8192;
	for (int i = 0; i < blocks; i++)
		sink = malloc(8192);
}

void flat_cache(void)
{
	for (int i = 0; i < 40 * MIB / 65536; i++)
		sink = malloc(65536);
}

void sawtooth(int tick)
{
	if (tick % 8 == 0)
		while (saw_held > 0)
			free(saw[--saw_held]);
	for (int i = 0; i < 4 * MIB / 32768; i++)
		saw[saw_held++] = malloc(32768);
}

void churner(void)
{
	for (int i = 0; i < RING; i++) {
		free(ring[i]);
		ring[i] = malloc(16384);
	}
}

static void one_tick(int tick)
{
	if (tick == 0)
		flat_cache();
	fast_leak();
	slow_leak(tick);
	sawtooth(tick);
	churner();
}

int main(int argc, char **argv)
{
	return run_ticks(argc, argv, 16, 100, one_tick);
}
