// The shared library that tests/progs/cxx_throw/main.cc loads with dlopen():
// exceptions are thrown from inside it, caught inside it, and propagate
// through it from a callback into the program, so that a tracer which took
// over the unwinder would show up as a different transcript.
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

namespace {

// Says when a throw unwinds through it.
struct Frame {
	const char *name;
	~Frame()
	{
		if (std::uncaught_exceptions())
			std::printf("  lib unwinds %s\n", name);
	}
};

struct LibError : std::runtime_error {
	explicit LibError(const std::string &what) : std::runtime_error(what) {}
};

int digit(char c)
{
	if (c < '0' || c > '9')
		throw LibError(std::string("not a digit: ") + c);
	return c - '0';
}

int parse(const char *s)
{
	Frame f{"parse"};
	int v = 0;
	for (; *s; s++)
		v = v * 10 + digit(*s);
	return v;
}

} // namespace

// Throws LibError (a type the program does not know) from two frames down.
extern "C" int lib_parse(const char *s)
{
	Frame f{"lib_parse"};
	return parse(s);
}

// Calls cb(0..n-1). std::out_of_range from the callback is caught here and
// counted; anything else passes through this library's frames.
extern "C" int lib_each(int n, void (*cb)(int))
{
	Frame f{"lib_each"};
	int skipped = 0;
	for (int i = 0; i < n; i++) {
		try {
			cb(i);
		} catch (const std::out_of_range &e) {
			skipped++;
		}
	}
	return skipped;
}
