// C++ and aligned allocations for the heaptrace command's tests: the
// allocator entry points (operator new, posix_memalign, ...) must not show
// as callers. At HEAPTRACE_RATE=1 the exit dump holds in use, per function:
//   make_objects: 3 x 1000 B (new char[]) and 2 x 8 B (new long)
//   make_aligned: 4096 + 2048 + 1024 B (posix_memalign, aligned_alloc, memalign)
//   make_vector:  the 24 B vector object (flat) and, below it, the 400 B
//                 array of std::vector<int>::reserve(100) (its leaf is
//                 libstdc++'s _M_allocate: only the allocator proper goes)
#include <cstdlib>
#include <malloc.h>
#include <vector>

void *held[16];
std::vector<int> *vec;

static void make_objects()
{
	for (int i = 0; i < 3; i++)
		held[i] = new char[1000];
	held[3] = new long(1);
	held[4] = new long(2);
}

static void make_aligned()
{
	if (posix_memalign(&held[5], 64, 4096) != 0)
		std::abort();
	held[6] = aligned_alloc(64, 2048);
	held[7] = memalign(64, 1024);
}

static void make_vector()
{
	vec = new std::vector<int>();
	vec->reserve(100);
}

int main()
{
	make_objects();
	make_aligned();
	make_vector();
	return held[7] == nullptr;
}
