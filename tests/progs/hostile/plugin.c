/* A plugin that hostile_dlopen (tests/progs/hostile_dlopen.c) loads and
 * unloads in a loop: the blocks it allocates outlive it. */
#include <stdlib.h>

void *plugin_alloc(void)
{
	free(malloc(10)); /* freed while the plugin is loaded */
	return malloc(4000);
}
