/* A service with a known heap for the HTTP endpoint's tests
 * (tests/test_profile.py): it allocates, says "ready", then for each line
 * "grow" on stdin allocates once more and answers "grown"; it exits at
 * end of input.
 *
 * At HEAPTRACE_RATE=1, per function:
 *   keep_small: in use 10 x 1000 B, allocated 10 x 1000 B
 *   churn:      in use  5 x 2048 B, allocated 20 x 2048 B
 *   grow:       in use  8 x 4096 B, allocated  8 x 4096 B, per line */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Global, and read at the end, so that the compiler keeps every malloc. */
void *keep[4096];
int nkeep;
void *churned[20];

void keep_small(void)
{
	for (int i = 0; i < 10; i++)
		keep[nkeep++] = malloc(1000);
}

void churn(void)
{
	for (int i = 0; i < 20; i++)
		churned[i] = calloc(1, 2048);
	for (int i = 5; i < 20; i++)
		free(churned[i]);
}

void grow(void)
{
	for (int i = 0; i < 8 && nkeep < 4096; i++)
		keep[nkeep++] = malloc(4096);
}

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
	return keep[0] == NULL;
}
