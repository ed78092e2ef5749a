/* A big table for the dumper (tests/test_hostile.py, tests/test_faults.py):
 * 8192 distinct call stacks (13 levels of two call sites each) and, at
 * rate 1, 20,000 live blocks, so that each dump takes a while to write.
 *   hostile_bigtable exit      then exit(5) from a second thread while the
 *                              main thread keeps allocating and periodic
 *                              dumps run; prints "built" first
 *   hostile_bigtable forever   then allocate and free until killed; prints
 *                              "built" once the table is full
 * alarm() ends a hung run. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEVELS 13
#define LIVE 20000

static void *kept[LIVE];
static unsigned next;

void bigtable_leaf(void)
{
	unsigned i = next++ % LIVE;
	free(kept[i]);
	kept[i] = malloc(8 + i % 200);
}

int step(unsigned bits, int k)
{
	if (!k) {
		bigtable_leaf();
		return 0;
	}
	if (bits & 1)
		return step(bits >> 1, k - 1) + 1;
	return step(bits >> 1, k - 1) + 2; /* a second call site */
}

static void *exit_soon(void *arg)
{
	(void)arg;
	usleep(30000);
	exit(5);
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "exit") && strcmp(argv[1], "forever"))) {
		fprintf(stderr, "usage: hostile_bigtable exit|forever\n");
		return 2;
	}
	alarm(60);
	for (unsigned i = 0; i < LIVE; i++)
		step(i, LEVELS);
	puts("built");
	fflush(stdout);
	if (!strcmp(argv[1], "exit")) {
		pthread_t t;
		pthread_create(&t, NULL, exit_soon, NULL);
	}
	for (unsigned i = 0;; i++)
		step(i * 2654435761u, LEVELS);
}
