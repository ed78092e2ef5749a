/* Symbolization test programs write a heaptrace dump of themselves to
 * stdout: one sample per call site they recorded (return addresses captured
 * with __builtin_return_address), then their own /proc/self/maps. The tests
 * know the expected function and line of each site from the `@name` marker
 * comments in the sources. */
#ifndef SELFDUMP_H
#define SELFDUMP_H
#include <stdio.h>

#define SELFDUMP_MAX 16

static void *selfdump_stacks[SELFDUMP_MAX][2];
static int selfdump_n;

/* The return address into the caller: the call site of capture(). */
__attribute__((noinline)) static void *capture(void)
{
	void *ra = __builtin_return_address(0);
	__asm__ volatile("" : : "r"(ra) : "memory");
	return ra;
}

/* Records a two-frame stack: a site inside a function and that function's
 * return address into its caller. Sample i has i+1 objects of 100 bytes. */
__attribute__((noinline)) static void selfdump_record(void *site, void *caller)
{
	if (selfdump_n < SELFDUMP_MAX) {
		selfdump_stacks[selfdump_n][0] = site;
		selfdump_stacks[selfdump_n][1] = caller;
		selfdump_n++;
	}
}

static void selfdump_write(void)
{
	long c = 0, b = 0;
	for (int i = 0; i < selfdump_n; i++) {
		c += i + 1;
		b += 100L * (i + 1);
	}
	printf("heap profile: %ld: %ld [%ld: %ld] @ heap_v2/1\n# heaptrace: 1\n", c, b, c, b + 1);
	for (int i = 0; i < selfdump_n; i++)
		printf("%d: %d [%d: %d] @ %p %p\n", i + 1, 100 * (i + 1), i + 1, 100 * (i + 1),
		       selfdump_stacks[i][0], selfdump_stacks[i][1]);
	printf("\nMAPPED_LIBRARIES:\n");
	FILE *maps = fopen("/proc/self/maps", "r");
	int ch;
	while (maps && (ch = fgetc(maps)) != EOF)
		putchar(ch);
	if (maps)
		fclose(maps);
}
#endif
