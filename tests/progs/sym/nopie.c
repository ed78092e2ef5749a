/* Symbolization of a non-PIE executable (built -fno-pie -no-pie), mapped at its link address. */
#include "selfdump.h"

__attribute__((noinline)) static void nopie_first(void)
{
	void *site = capture(); /* @nopie_first */
	selfdump_record(site, __builtin_return_address(0));
}

__attribute__((noinline)) static void nopie_second(void)
{
	void *site = capture(); /* @nopie_second */
	selfdump_record(site, __builtin_return_address(0));
}

int main(void)
{
	nopie_first(); /* @nopie_main_first */
	nopie_second(); /* @nopie_main_second */
	selfdump_write();
	return 0;
}
