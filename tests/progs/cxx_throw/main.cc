// C++ exceptions under heaptrace: thrown and caught across several frames,
// from inside a dlopen()ed library (tests/progs/cxx_throw/lib.cc) and from a
// callback through it, in a loop and on a second thread. The transcript on
// stdout and the exit status (3) must be the same with and without the
// preload. It also names the object that _Unwind_RaiseException and
// backtrace resolve to in the global scope: libgcc_s and libc, never
// libunwind, which heaptrace uses privately.
#include <dlfcn.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Says when a throw unwinds through it.
struct Frame {
	const char *name;
	~Frame()
	{
		if (std::uncaught_exceptions())
			std::printf("  unwinds %s\n", name);
	}
};

struct AppError : std::runtime_error {
	int code;
	AppError(const std::string &what, int c) : std::runtime_error(what), code(c) {}
};

// Each level allocates, so that a throw unwinds through live heap objects.
[[noreturn]] void level3(int n)
{
	Frame f{"level3"};
	auto held = std::make_unique<std::vector<int>>(n, n);
	throw AppError("deep failure " + std::to_string(n), n * 10 + held->at(0));
}

int level2(int n)
{
	Frame f{"level2"};
	std::string label(64, 'x');
	level3(n);
}

int level1(int n)
{
	Frame f{"level1"};
	try {
		return level2(n);
	} catch (const std::logic_error &) {
		std::printf("  wrong handler\n");
		return -1;
	}
}

int quiet(int n)
{
	// The same shape without transcript lines, for the loops.
	auto held = std::make_unique<std::vector<int>>(n + 1, n);
	if (n % 3 == 0)
		throw AppError("quiet", held->at(0));
	if (n % 3 == 1)
		throw std::out_of_range("quiet");
	return held->at(0);
}

void callback(int i)
{
	if (i == 2)
		throw AppError("from the callback", i);
	if (i % 2)
		throw std::out_of_range("odd");
}

void count_callback(int i)
{
	if (i % 2)
		throw std::out_of_range("odd");
}

void where(const char *symbol)
{
	Dl_info info;
	void *p = dlsym(RTLD_DEFAULT, symbol);
	if (p && dladdr(p, &info) && info.dli_fname)
		std::printf("%s in %s\n", symbol, info.dli_fname);
	else
		std::printf("%s not found\n", symbol);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		std::fprintf(stderr, "usage: cxx_throw LIBRARY.so\n");
		return 2;
	}
	where("_Unwind_RaiseException");
	where("backtrace");

	std::printf("throw across frames:\n");
	try {
		level1(4);
	} catch (const AppError &e) {
		std::printf("caught AppError '%s' code %d\n", e.what(), e.code);
	}

	std::printf("rethrow:\n");
	try {
		try {
			level2(7);
		} catch (...) {
			std::printf("  rethrowing\n");
			throw;
		}
	} catch (const std::exception &e) {
		std::printf("caught again '%s'\n", e.what());
	}

	void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		std::printf("dlopen failed\n");
		return 1;
	}
	auto lib_parse = reinterpret_cast<int (*)(const char *)>(dlsym(lib, "lib_parse"));
	auto lib_each = reinterpret_cast<int (*)(int, void (*)(int))>(dlsym(lib, "lib_each"));
	if (!lib_parse || !lib_each) {
		std::printf("dlsym failed\n");
		return 1;
	}

	std::printf("from the library:\n");
	std::printf("parsed %d\n", lib_parse("1234"));
	try {
		lib_parse("12x4");
	} catch (const std::exception &e) {
		std::printf("caught from the library '%s'\n", e.what());
	}

	std::printf("through the library:\n");
	try {
		lib_each(5, callback);
	} catch (const AppError &e) {
		std::printf("caught through the library '%s' code %d\n", e.what(), e.code);
	}

	// Loops: many throws, each allocating its exception and a vector, in
	// this thread, in a second one, and through the library.
	int app = 0, range = 0, sum = 0;
	for (int i = 0; i < 3000; i++) {
		try {
			sum += quiet(i);
		} catch (const AppError &) {
			app++;
		} catch (const std::out_of_range &) {
			range++;
		}
	}
	std::printf("loop: %d AppError, %d out_of_range, sum %d\n", app, range, sum);

	int thread_caught = 0;
	std::thread t([&thread_caught] {
		for (int i = 0; i < 1000; i++) {
			try {
				quiet(3 * i);
			} catch (const AppError &e) {
				thread_caught += e.code == 3 * i;
			}
		}
	});
	t.join();
	std::printf("thread: %d caught\n", thread_caught);

	int skipped = 0;
	for (int i = 0; i < 500; i++)
		skipped += lib_each(4, count_callback);
	std::printf("library loop: %d skipped\n", skipped);

	dlclose(lib);
	return 3;
}
