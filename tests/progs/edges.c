/* The corners of the allocation API. It prints what each call did (result
 * class and errno), so that the output with and without heaptrace can be
 * compared line by line; calls that fail are made from failing_calls() so
 * the test can check that nothing from there was recorded. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;
/* volatile: the compiler must not see (and reject) the huge sizes and the
 * alignment that is not a power of two. */
static volatile size_t huge = SIZE_MAX, half = SIZE_MAX / 2, odd = 3;

static void say(const char *what, const void *p, int err)
{
	printf("%s: %s errno=%d\n", what, p ? "ptr" : "NULL", err);
}

void failing_calls(void)
{
	void *p;
	errno = 0;
	p = calloc(half, 4);
	say("calloc overflow", p, errno);
	errno = 0;
	p = malloc(huge);
	say("malloc SIZE_MAX", p, errno);
	errno = 1234;
	int rc = posix_memalign(&p, odd, 16);
	printf("posix_memalign align 3: rc=%d errno=%d\n", rc, errno);
	errno = 0;
	p = reallocarray(NULL, half, 4);
	say("reallocarray overflow", p, errno);
}

/* glibc accepts some alignments C11 calls invalid; whatever it does must
 * be the same under heaptrace. */
void odd_alignment(void)
{
	errno = 0;
	void *p = aligned_alloc(odd, 16);
	say("aligned_alloc align 3", p, errno);
	free(p);
}

void working_calls(void)
{
	errno = 55;
	free(NULL);
	printf("free(NULL) errno=%d\n", errno);
	void *p = realloc(NULL, 100);
	say("realloc(NULL, 100)", p, 0);
	printf("usable >= 100: %d\n", malloc_usable_size(p) >= 100);
	errno = 66;
	p = realloc(p, 0);
	say("realloc(p, 0)", p, errno);
	free(p);
	errno = 77;
	sink = malloc(10);
	free(sink);
	printf("errno after free: %d\n", errno);
	errno = 88;
	sink = malloc(24);
	printf("errno after malloc: %d\n", errno);
	printf("malloc_usable_size(NULL) = %zu\n", malloc_usable_size(NULL));
}

int main(void)
{
	failing_calls();
	odd_alignment();
	working_calls();
	return 0;
}
