/* Symbolization of a position-independent executable (built -fPIE -pie). */
#include "selfdump.h"

__attribute__((noinline)) static void pie_first(void)
{
	void *site = capture(); /* @pie_first */
	selfdump_record(site, __builtin_return_address(0));
}

__attribute__((noinline)) static void pie_second(void)
{
	void *site = capture(); /* @pie_second */
	selfdump_record(site, __builtin_return_address(0));
}

int main(void)
{
	pie_first(); /* @pie_main_first */
	pie_second(); /* @pie_main_second */
	selfdump_write();
	return 0;
}
