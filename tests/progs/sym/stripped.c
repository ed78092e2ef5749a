/* Symbolization of a stripped executable that still exports its global
 * functions (-rdynamic, then strip): sites in its static functions lie in
 * no exported symbol, past the end of one, and must not be named after it.
 * The build keeps the stripped debug part apart (objcopy --only-keep-debug)
 * and links it by .gnu_debuglink, for the debug-file tests. */
#include "selfdump.h"

__attribute__((noinline)) void stripped_exported(void)
{
	void *site = capture(); /* @stripped_exported */
	selfdump_record(site, __builtin_return_address(0));
}

__attribute__((noinline)) static void stripped_static_one(void)
{
	void *site = capture(); /* @stripped_static_one */
	selfdump_record(site, __builtin_return_address(0));
}

__attribute__((noinline)) static void stripped_static_two(void)
{
	void *site = capture(); /* @stripped_static_two */
	selfdump_record(site, __builtin_return_address(0));
}

int main(void)
{
	stripped_exported(); /* @stripped_main_exported */
	stripped_static_one(); /* @stripped_main_one */
	stripped_static_two(); /* @stripped_main_two */
	selfdump_write();
	return 0;
}
