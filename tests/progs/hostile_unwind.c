/* Stacks the unwinder must survive (tests/test_hostile.py); built with
 * tests/progs/hostile/nounwind.c (extra.mk). Modes:
 *   hostile_unwind deep D     one 48-byte block kept at the bottom of a
 *                             recursion D calls deep, for D = 1, 2, 4, ..
 *                             up to D (deep_keep), far past any frame cap
 *   hostile_unwind nounwind   100 blocks each of 32 B through frames
 *                             without CFI (via_nocfi), 64 B under a %rbp
 *                             that points at an unmapped page (via_badrbp),
 *                             96 B under a %rbp chain that loops
 *                             (via_looprbp); all kept
 *   hostile_unwind stacks T N T threads, each N allocations from 400
 *                             distinct stacks, every other one kept
 * Prints what it kept and exits 0; alarm() ends a hung run. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostile/nounwind.h"

static void *volatile kept[1 << 20];
static int nkept;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void keep(void *p)
{
	pthread_mutex_lock(&lock);
	if (nkept < (1 << 20))
		kept[nkept++] = p;
	else
		free(p);
	pthread_mutex_unlock(&lock);
}

void deep_keep(void)
{
	keep(malloc(48));
}

int recurse(int depth, void (*leaf)(void))
{
	if (depth <= 1) {
		leaf();
		return 1;
	}
	return recurse(depth - 1, leaf) + 1; /* not a tail call */
}

void via_nocfi(void)
{
	keep(malloc(32));
}

void via_badrbp(void)
{
	keep(malloc(64));
}

void via_looprbp(void)
{
	keep(malloc(96));
}

static _Thread_local int stack_n;

void stacks_leaf(void)
{
	void *p = malloc(16 + (size_t)(stack_n % 64));
	if (stack_n++ % 2)
		keep(p);
	else
		free(p);
}

static void *stacks_thread(void *arg)
{
	int n = (int)(size_t)arg;
	for (int i = 0; i < n; i++)
		recurse(1 + i % 400, stacks_leaf);
	return NULL;
}

int main(int argc, char **argv)
{
	alarm(60);
	if (argc > 2 && !strcmp(argv[1], "deep")) {
		int max = atoi(argv[2]), n = 0;
		for (int d = 1; d <= max; d *= 2, n++)
			recurse(d, deep_keep);
		printf("deep %d kept %d\n", max, n);
	} else if (argc > 1 && !strcmp(argv[1], "nounwind")) {
		for (int i = 0; i < 50; i++) {
			nounwind_twice(via_nocfi);
			bad_rbp_call(via_badrbp);
			bad_rbp_call(via_badrbp);
			loop_rbp_call(via_looprbp);
			loop_rbp_call(via_looprbp);
		}
		printf("nounwind kept %d\n", nkept);
	} else if (argc > 3 && !strcmp(argv[1], "stacks")) {
		int t = atoi(argv[2]), n = atoi(argv[3]);
		pthread_t ids[16];
		for (int i = 0; i < t && i < 16; i++)
			pthread_create(&ids[i], NULL, stacks_thread, (void *)(size_t)n);
		for (int i = 0; i < t && i < 16; i++)
			pthread_join(ids[i], NULL);
		printf("stacks done\n");
	} else {
		fprintf(stderr, "usage: hostile_unwind deep D | nounwind | stacks T N\n");
		return 2;
	}
	return 0;
}
