/* Allocates at the bottom of recursions of depth 1..argv[1], keeping each
 * block: one distinct stack per depth, and stacks deeper than any sensible
 * frame cap. argv[2] repeats each depth that many times. */
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink[100000];
static int next;

void descend(int depth)
{
	if (depth > 1) {
		descend(depth - 1);
		__asm__ volatile("" ::: "memory"); /* not a tail call */
		return;
	}
	sink[next++ % 100000] = malloc(100);
}

int main(int argc, char **argv)
{
	int max = argc > 1 ? atoi(argv[1]) : 100;
	int reps = argc > 2 ? atoi(argv[2]) : 1;
	for (int r = 0; r < reps; r++)
		for (int d = 1; d <= max; d++)
			descend(d);
	printf("%d\n", next);
	return 0;
}
