/* Calls heaptrace_dump() argv[1] times, allocating a little between dumps,
 * for the tests of dump numbering and thinning. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10, failed = 0;
	int (*dump)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "heaptrace_dump");
	if (!dump) {
		puts("heaptrace_dump not found");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		sink = malloc(4096);
		failed += dump() != 0;
	}
	printf("%d dumps, %d failed\n", n, failed);
	return 0;
}
