/* A tiny program whose stdout and exit status (7) must not change under
 * heaptrace, whatever its configuration (tests/test_config.py). It
 * allocates a little, so the tracer has work. With the argument "wait" it
 * first reads stdin to its end, so that a test can signal it or let
 * periodic dumps happen and then let it finish. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *kept[16];

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "wait")) {
		char buf[64];
		ssize_t n;
		while ((n = read(0, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
			;
	}
	size_t total = 0;
	for (int i = 0; i < 16; i++) {
		kept[i] = malloc(100 * (size_t)(i + 1));
		memset(kept[i], i, 100 * (size_t)(i + 1));
		total += 100 * (size_t)(i + 1);
	}
	printf("allocated %zu bytes\n", total);
	return 7;
}
