/* The shared-library half of the shared-library symbolization test: the
 * recorded site lies in this library, mapped at a random base. */
#include "selfdump.h"

__attribute__((noinline)) void shlib_work(void);
void shlib_write(void);

__attribute__((noinline)) void shlib_work(void)
{
	void *site = capture(); /* @shlib_work */
	selfdump_record(site, __builtin_return_address(0));
}

void shlib_write(void)
{
	selfdump_write();
}
