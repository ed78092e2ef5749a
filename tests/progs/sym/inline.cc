// Symbolization of optimised C++ (built -O2): the recorded site is in a
// member function template inlined into a namespaced function, so addr2line
// -i must give both, demangled.
#include "selfdump.h"

namespace shapes {

template <typename T> struct Box {
	T value;
	__attribute__((always_inline)) inline void *fill()
	{
		return capture(); // @inline_fill
	}
};

__attribute__((noinline)) void *make_box(int k)
{
	Box<int> box{k};
	void *site = box.fill(); // @inline_make_box
	selfdump_record(site, __builtin_return_address(0));
	return site;
}

} // namespace shapes

int main()
{
	shapes::make_box(3); // @inline_main
	selfdump_write();
	return 0;
}
