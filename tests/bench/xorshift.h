/* The benchmark programs' random numbers: xorshift64*, seeded per thread,
 * so that every run does the same work. */
#ifndef HEAPTRACE_BENCH_XORSHIFT_H
#define HEAPTRACE_BENCH_XORSHIFT_H

#include <stdint.h>

static inline uint64_t next_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

#endif
