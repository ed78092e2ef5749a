/* A service with a known heap for the HTTP endpoint's tests
 * (tests/test_profile.py): it allocates, says "ready", then for each line
 * "grow" on stdin allocates once more and answers "grown"; it exits at
 * end of input.
 *
 * Its sites are tests/core/profile_sites.c's, linked in. At
 * HEAPTRACE_RATE=1, per function:
 *   keep_small: in use 10 x 1000 B, allocated 10 x 1000 B
 *   churn:      in use  5 x 2048 B, allocated 20 x 2048 B
 *   grow:       in use  8 x 4096 B, allocated  8 x 4096 B, per line */
#include <stdio.h>
#include <string.h>

#include "../core/profile_sites.h"

int main(void)
{
	char line[64];
	keep_small();
	churn();
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (strcmp(line, "grow\n") == 0) {
			grow();
			printf("grown\n");
			fflush(stdout);
		}
	}
	return 0;
}
