/* The cost of interposing mmap: argv[1] pairs of mmap and munmap of
 * argv[2] bytes (anonymous, untouched), timed with CLOCK_MONOTONIC, the
 * mean per pair printed in ns. Run bare, under heaptrace with
 * HEAPTRACE_MMAP=0, and with it on (docs/benchmarks.md). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 65536;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED || munmap(p, size))
			return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
	printf("%.1f\n", ns / (double)n);
	return 0;
}
