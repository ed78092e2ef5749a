// C++ allocation sites with a known exit state, to prove that heaptrace sees
// every form of `new` and `delete` and the standard containers, whatever
// allocator follows it (libstdc++'s new calls malloc, tcmalloc's does not),
// and that their stacks carry demangled C++ names.
//
// At HEAPTRACE_RATE=1 the exit dump holds, in use, exactly:
//   make_widgets()                7 x sizeof(Widget) = 7 x 72 B (new Widget)
//   make_buffers()                3 x 1000 B                    (new char[1000])
//   shapes::Store::fill(int)      1 x 4000 B  (std::vector<int>, reserve(1000))
//   make_strings()                5 x 201 B   (std::string of 200 chars)
//   churn()                       nothing in use; 50 x 64 B allocated
//   make_aligned()                4 x 256 B + 2 x 512 B (new of an alignas(64)
//                                 type, and of an array of 2)
//   make_nothrow()                5 x sizeof(Widget) + 2 x 300 B + 3 x 256 B
//                                 + 1 x 768 B (nothrow new, new[], aligned)
//   delete_forms()                nothing in use; 12 blocks, 1360 B allocated,
//                                 one freed through each form of delete
//   main()                        1 x sizeof(Kept) (flat: new Kept)
// The containers live in a heap object that is never destroyed: global
// destructors would run before the exit dump and free them. It prints the
// sizes so that the test need not assume the ABI.
//
// With the argument "empty" it only keeps 4 x operator new(0) from make_empty():
// 4 objects of 0 bytes, though libstdc++ mallocs 1 byte for each.
//
// With the argument "throw" it also makes operator new fail (a request of
// 2^62 bytes) in each throwing form, catches std::bad_alloc, runs a
// new_handler that gives up on its third call, sees nothrow forms return
// null, and then allocates in after_throw() (2 x sizeof(Widget), kept), to
// show that tracing goes on after an exception passed through heaptrace.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

struct Widget {
	long id;
	double weight[8];
};

Widget *widgets[7];
char *buffers[3];
char *empties[4];

namespace shapes {
struct Store {
	std::vector<int> items;
	void fill(int n);
};

void Store::fill(int n)
{
	items.reserve(1000);
	for (int i = 0; i < n; i++)
		items.push_back(i);
}
} // namespace shapes

struct Kept {
	shapes::Store store;
	std::string strings[5];
};

Kept *kept;

void make_widgets()
{
	for (int i = 0; i < 7; i++)
		widgets[i] = new Widget{i, {}};
}

void make_buffers()
{
	for (int i = 0; i < 3; i++)
		buffers[i] = new char[1000]();
}

void make_empty()
{
	for (int i = 0; i < 4; i++)
		empties[i] = static_cast<char *>(::operator new(0));
}

void make_strings()
{
	for (int i = 0; i < 5; i++)
		kept->strings[i].assign(200, static_cast<char>('a' + i));
}

// The pointer escapes through a volatile, so the compiler may not elide the
// new/delete pair (C++14 allows that for unobservable allocations).
long *volatile churned;

void churn()
{
	for (int i = 0; i < 50; i++) {
		churned = new long[8]();
		delete[] churned;
	}
}

// A loop of two may be unrolled into two call sites, two stacks; not
// through a volatile bound.
volatile int two = 2;

struct alignas(64) Aligned {
	char bytes[200];
};

Aligned *aligned[4], *aligned_arrays[2];

void make_aligned()
{
	for (int i = 0; i < 4; i++)
		aligned[i] = new Aligned();
	for (int i = 0; i < two; i++)
		aligned_arrays[i] = new Aligned[2]();
}

Widget *nothrow_widgets[5];
char *nothrow_buffers[2];
Aligned *nothrow_aligned[3], *nothrow_aligned_array;

void make_nothrow()
{
	for (int i = 0; i < 5; i++)
		nothrow_widgets[i] = new (std::nothrow) Widget{i, {}};
	for (int i = 0; i < two; i++)
		nothrow_buffers[i] = new (std::nothrow) char[300]();
	for (int i = 0; i < 3; i++)
		nothrow_aligned[i] = new (std::nothrow) Aligned();
	nothrow_aligned_array = new (std::nothrow) Aligned[3]();
}

void *volatile block;

// Each form of delete frees a block of the matching form of new.
void delete_forms()
{
	const std::align_val_t al{64};
	block = ::operator new(40);
	::operator delete(block);
	block = ::operator new(48);
	::operator delete(block, 48);
	block = ::operator new(64, al);
	::operator delete(block, al);
	block = ::operator new(80, al);
	::operator delete(block, 80, al);
	block = ::operator new(96, std::nothrow);
	::operator delete(block, std::nothrow);
	block = ::operator new(112, al, std::nothrow);
	::operator delete(block, al, std::nothrow);
	block = ::operator new[](120);
	::operator delete[](block);
	block = ::operator new[](128);
	::operator delete[](block, 128);
	block = ::operator new[](144, al);
	::operator delete[](block, al);
	block = ::operator new[](160, al);
	::operator delete[](block, 160, al);
	block = ::operator new[](176, std::nothrow);
	::operator delete[](block, std::nothrow);
	block = ::operator new[](192, al, std::nothrow);
	::operator delete[](block, al, std::nothrow);
}

int handler_calls;

void give_up_third_time()
{
	if (++handler_calls == 3)
		std::set_new_handler(nullptr);
}

Widget *after[2];

void after_throw()
{
	for (int i = 0; i < two; i++)
		after[i] = new Widget{i, {}};
}

// operator new of 2^62 bytes fails under any allocator.
volatile size_t huge = SIZE_MAX / 4;

void throw_forms()
{
	try {
		block = ::operator new(huge);
	} catch (const std::bad_alloc &) {
		std::printf("caught new\n");
	}
	try {
		block = new char[huge];
	} catch (const std::bad_alloc &) {
		std::printf("caught new[]\n");
	}
	try {
		block = ::operator new(huge, std::align_val_t{64});
	} catch (const std::bad_alloc &) {
		std::printf("caught aligned new\n");
	}
	try {
		block = ::operator new[](huge, std::align_val_t{64});
	} catch (const std::bad_alloc &) {
		std::printf("caught aligned new[]\n");
	}
	std::set_new_handler(give_up_third_time);
	try {
		block = ::operator new(huge);
	} catch (const std::bad_alloc &) {
		std::printf("caught after %d new_handler calls\n", handler_calls);
	}
	std::printf("nothrow %s %s\n",
		    ::operator new(huge, std::nothrow) ? "allocated" : "null",
		    ::operator new[](huge, std::align_val_t{64}, std::nothrow)
			? "allocated" : "null");
	after_throw();
}

int main(int argc, char **argv)
{
	// Unbuffered, so that stdio allocates no buffer of its own.
	std::setvbuf(stdout, nullptr, _IONBF, 0);
	if (argc > 1 && std::strcmp(argv[1], "empty") == 0) {
		make_empty();
		return 0;
	}
	kept = new Kept;
	make_widgets();
	make_buffers();
	kept->store.fill(1000);
	make_strings();
	churn();
	make_aligned();
	make_nothrow();
	delete_forms();
	if (argc > 1 && std::strcmp(argv[1], "throw") == 0)
		throw_forms();
	std::printf("sizeof_widget %zu\n", sizeof(Widget));
	std::printf("sizeof_kept %zu\n", sizeof(Kept));
	std::printf("sizeof_aligned %zu\n", sizeof(Aligned));
	std::printf("check %ld %d %d %c\n", widgets[6]->id, buffers[2][999],
		    kept->store.items[999], kept->strings[4][199]);
	return 0;
}
