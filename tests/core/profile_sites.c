/* The allocation sites of tests/core/profile_out.c, in a shared library so
 * that their frames are outside the object the tracer is linked into, and
 * of tests/progs/http_service.c, linked into it (profile_sites.h). */
#include "profile_sites.h"

#include <stdlib.h>

#define KEEP_MAX 4096

/* Global, so that the compiler keeps every malloc. */
void *keep[KEEP_MAX];
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

void release_some(void)
{
	for (int i = 0; i < 4; i++)
		free(keep[i]);
}

void grow(void)
{
	for (int i = 0; i < 8 && nkeep < KEEP_MAX; i++)
		keep[nkeep++] = malloc(4096);
}
