/* A C program that loads C++ code after it started (argv[1], dlopen with
 * RTLD_LOCAL, so the library's libstdc++ stays out of the global scope):
 * heaptrace found no operator new after it at start, and its own forms do
 * libstdc++'s work, down to throwing std::bad_alloc with the library's
 * runtime. Prints the library's report (tests/progs/cxx_late/lib.cc). */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	void *lib = argc > 1 ? dlopen(argv[1], RTLD_NOW | RTLD_LOCAL) : NULL;
	int (*run)(void) = lib ? (int (*)(void))dlsym(lib, "late_run") : NULL;
	if (!run) {
		fprintf(stderr, "cxx_late: %s\n", dlerror());
		return 2;
	}
	int got = run();
	printf("late_run %d\n", got);
	return got == 15 ? 0 : 1;
}
