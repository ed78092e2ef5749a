// C++ allocation sites with a known exit state, to prove that heaptrace sees
// `new`, `new[]` and the standard containers through libstdc++'s malloc and
// that their stacks carry demangled C++ names.
//
// At HEAPTRACE_RATE=1 the exit dump holds, in use, exactly:
//   make_widgets()                7 x sizeof(Widget) = 7 x 72 B (new Widget)
//   make_buffers()                3 x 1000 B                    (new char[1000])
//   shapes::Store::fill(int)      1 x 4000 B  (std::vector<int>, reserve(1000))
//   make_strings()                5 x 201 B   (std::string of 200 chars)
//   churn()                       nothing in use; 50 x 64 B allocated
//   main()                        1 x sizeof(Kept) (flat: new Kept)
// The containers live in a heap object that is never destroyed: global
// destructors would run before the exit dump and free them. It prints the
// sizes so that the test need not assume the ABI.
#include <cstdio>
#include <string>
#include <vector>

struct Widget {
	long id;
	double weight[8];
};

Widget *widgets[7];
char *buffers[3];

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

int main()
{
	// Unbuffered, so that stdio allocates no buffer of its own.
	std::setvbuf(stdout, nullptr, _IONBF, 0);
	kept = new Kept;
	make_widgets();
	make_buffers();
	kept->store.fill(1000);
	make_strings();
	churn();
	std::printf("sizeof_widget %zu\n", sizeof(Widget));
	std::printf("sizeof_kept %zu\n", sizeof(Kept));
	std::printf("check %ld %d %d %c\n", widgets[6]->id, buffers[2][999],
		    kept->store.items[999], kept->strings[4][199]);
	return 0;
}
