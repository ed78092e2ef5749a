/* A program with a known allocation pattern for the `heaptrace` command's
 * tests. Phase 1 allocates, asks for a dump with raise(HEAPTRACE signal) and
 * waits for it; phase 2 frees some, allocates more, and exits (exit dump).
 *
 * At HEAPTRACE_RATE=1 the exit dump holds exactly, per function:
 *   keep_small:  in use 10 x 1000 B        allocated 10 x 1000 B
 *   churn:       in use  5 x 2048 B        allocated 20 x 2048 B
 *   leaf_big:    in use  3 x 65536 B       allocated  3 x 65536 B
 *   mid:         in use  4 x 512 B (flat)  allocated  4 x 512 B;
 *                cum adds leaf_big
 *   grow:        in use  8 x 4096 B        allocated  8 x 4096 B (phase 2 only)
 * The phase 1 dump lacks grow and holds all 20 churn objects.
 * With no arguments it skips the phase 1 dump. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Global, and read at the end, so that the compiler keeps every malloc. */
void *keep[64];
int nkeep;
void *churned[20];

static void keep_small(void)
{
	for (int i = 0; i < 10; i++)
		keep[nkeep++] = malloc(1000);
}

static void churn(void)
{
	for (int i = 0; i < 20; i++)
		churned[i] = calloc(1, 2048);
}

static void churn_release(void)
{
	for (int i = 5; i < 20; i++)
		free(churned[i]);
}

static void leaf_big(void)
{
	for (int i = 0; i < 3; i++)
		keep[nkeep++] = malloc(65536);
}

static void mid(void)
{
	for (int i = 0; i < 4; i++)
		keep[nkeep++] = malloc(512);
	leaf_big();
}

static void grow(void)
{
	for (int i = 0; i < 8; i++)
		keep[nkeep++] = malloc(4096);
}

/* Waits until the preload has written dump number 1 of this process. */
static void wait_first_dump(void)
{
	const char *dir = getenv("HEAPTRACE_DIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/heaptrace.%d.0001.heap", dir ? dir : ".", (int)getpid());
	for (int i = 0; i < 1000 && access(path, F_OK) != 0; i++)
		usleep(10000);
}

int main(int argc, char **argv)
{
	keep_small();
	churn();
	mid();
	if (argc > 1 && strcmp(argv[1], "two-dumps") == 0) {
		raise(SIGUSR1);
		wait_first_dump();
	}
	churn_release();
	grow();
	return keep[nkeep - 1] == NULL || churned[0] == NULL;
}
