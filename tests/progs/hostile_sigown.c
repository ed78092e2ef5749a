/* A program that owns SIGUSR1 (tests/test_hostile.py): its handler is in
 * libhostile_first.so (tests/progs/hostile/first.c), installed either by
 * that library's constructor, before heaptrace's (HOSTILE_EARLY=1), or by
 * main() after heaptrace started (argument "late"). Prints "ready", then
 * answers each line on stdin with "handled N" (the handler's count),
 * allocating a little each time; at end of input prints "total N" and
 * exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void first_install(void);
int first_handled(void);

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "late"))
		first_install();
	void *kept[4096];
	int n = 0;
	char line[64];
	puts("ready");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (n < 4096)
			kept[n++] = malloc(100);
		printf("handled %d\n", first_handled());
		fflush(stdout);
	}
	printf("total %d\n", first_handled());
	while (n)
		free(kept[--n]);
	return 0;
}
