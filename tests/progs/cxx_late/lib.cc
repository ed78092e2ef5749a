// The C++ half of tests/progs/cxx_late: at HEAPTRACE_RATE=1 the exit dump
// holds, by site,
//   late_widgets()   3 x sizeof(Widget) = 3 x 72 B in use (new Widget)
//   late_arrays()    nothing in use; 4 x 500 B allocated (new[], delete[])
//   late_aligned()   2 x 256 B in use (new of an alignas(64) type)
// and late_run() returns 15 when each way of failing behaved as
// libstdc++'s operator new does: bad_alloc from new and from aligned new,
// null from nothrow new, and a new_handler called until it gives up.
#include <cstddef>
#include <cstdint>
#include <new>

struct Widget {
	long id;
	double weight[8];
};

struct alignas(64) Aligned {
	char bytes[200];
};

Widget *widgets[3];
Aligned *aligned[2];
char *volatile churned;

void late_widgets()
{
	for (int i = 0; i < 3; i++)
		widgets[i] = new Widget{i, {}};
}

void late_arrays()
{
	for (int i = 0; i < 4; i++) {
		churned = new char[500]();
		delete[] churned;
	}
}

void late_aligned()
{
	for (int i = 0; i < 2; i++)
		aligned[i] = new Aligned();
}

static int handler_calls;

static void give_up_third_time()
{
	if (++handler_calls == 3)
		std::set_new_handler(nullptr);
}

static volatile size_t huge = SIZE_MAX / 4;
static void *volatile block;

extern "C" int late_run()
{
	late_widgets();
	late_arrays();
	late_aligned();
	int got = 0;
	try {
		block = ::operator new(huge);
	} catch (const std::bad_alloc &) {
		got |= 1;
	}
	try {
		block = ::operator new(huge, std::align_val_t{64});
	} catch (const std::bad_alloc &) {
		got |= 2;
	}
	if (!::operator new(huge, std::nothrow))
		got |= 4;
	std::set_new_handler(give_up_third_time);
	try {
		block = ::operator new(huge);
	} catch (const std::bad_alloc &) {
		got |= handler_calls == 3 ? 8 : 0;
	}
	return got;
}
