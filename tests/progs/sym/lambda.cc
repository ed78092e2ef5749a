// A lambda inlined into main at -O2: its frame must be kept (binutils
// addr2line drops it and shows main; eu-addr2line -i keeps it).
#include "selfdump.h"

int main()
{
	auto site_of = [](int k) __attribute__((always_inline)) {
		void *site = capture(); // @lambda_body
		return k ? site : nullptr;
	};
	void *site = site_of(1); // @lambda_main
	selfdump_record(site, __builtin_return_address(0));
	selfdump_write();
	return 0;
}
