/* Blocks of two ages: some kept from the start, some made just before the
 * dump. argv[1] is how many seconds lie between them. The dump is taken
 * through heaptrace_dump(), found with dlsym so no linking is needed. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *volatile sink[32];

void keep_old(void)
{
	for (int i = 0; i < 10; i++)
		sink[i] = malloc(1000);
}

void keep_fresh(void)
{
	for (int i = 0; i < 5; i++)
		sink[10 + i] = malloc(2000);
}

int main(int argc, char **argv)
{
	keep_old();
	sleep(argc > 1 ? (unsigned)atoi(argv[1]) : 4);
	keep_fresh();
	int (*dump)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "heaptrace_dump");
	int rc = dump ? dump() : -1;
	printf("dump: %d\n", rc);
	return 0;
}
