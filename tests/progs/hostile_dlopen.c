/* Allocations that outlive their library (tests/test_hostile.py): argv[1]
 * is a plugin (tests/progs/hostile/plugin.c) that is dlopen()ed, called
 * once (it keeps one 4000-byte block and frees a 10-byte one) and
 * dlclose()d, 200 times; then heaptrace_dump(), found with dlsym, writes a
 * dump while those blocks are live and the plugin is unmapped. Prints
 * "loaded 200 dump N" (N the API's return value, or "none" untraced) and
 * exits 0. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#define ROUNDS 200

static void *kept[ROUNDS];

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: hostile_dlopen PLUGIN.so\n");
		return 2;
	}
	int loaded = 0;
	for (int i = 0; i < ROUNDS; i++) {
		void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			fprintf(stderr, "%s\n", dlerror());
			return 1;
		}
		void *(*alloc)(void) = (void *(*)(void))dlsym(h, "plugin_alloc");
		if (alloc) {
			kept[i] = alloc();
			loaded++;
		}
		dlclose(h);
	}
	int (*dump)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "heaptrace_dump");
	if (dump)
		printf("loaded %d dump %d\n", loaded, dump());
	else
		printf("loaded %d dump none\n", loaded);
	for (int i = 0; i < ROUNDS; i++)
		free(kept[i]);
	return 0;
}
