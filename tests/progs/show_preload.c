/* Prints LD_PRELOAD as this process sees it, and allocates a little, so a
 * test can tell whether an exec'd child inherited heaptrace. */
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;

int main(void)
{
	const char *p = getenv("LD_PRELOAD");
	sink = malloc(100);
	printf("%s\n", p ? p : "(unset)");
	return 0;
}
