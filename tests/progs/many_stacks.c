/* Allocates from argv[1] distinct call stacks (default 500000, at most
 * 16^5): stack i is a recursion DEPTH levels deep that takes, at level d,
 * the one of 16 call sites named by hex digit d of i, so every i has
 * return addresses of its own. All stacks end in the one malloc call of
 * leaf(). Stack i allocates 1 + i % 3 blocks of 16 + 8 * (i % 61) bytes
 * and keeps the first of them when i % 8 == 0, freeing the others
 * (tests/test_stacks.py computes the same). It allocates nothing else: its
 * line of output is written without stdio's buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define DEPTH 5

static void *volatile kept;
static volatile unsigned sink;
static unsigned long n_kept;

static void leaf(unsigned i)
{
	size_t size = 16 + 8 * (i % 61);
	for (unsigned b = 0; b < 1 + i % 3; b++) {
		void *p = malloc(size);
		if (b == 0 && i % 8 == 0) {
			kept = p; /* never freed */
			n_kept++;
		} else {
			free(p);
		}
	}
}

/* Each case calls from its own address, and the different statement after
 * each call keeps the calls apart (no tail call, no merged tails). */
#define SITE(k)                                                                \
	case k:                                                                \
		step(d - 1, i);                                                \
		sink += k;                                                     \
		break;

static void step(int d, unsigned i)
{
	if (d == 0) {
		leaf(i);
		sink++;
		return;
	}
	switch ((i >> (4 * (d - 1))) & 15) {
		SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)
		SITE(8) SITE(9) SITE(10) SITE(11) SITE(12) SITE(13) SITE(14)
		SITE(15)
	}
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 500000;
	if (n > 1u << (4 * DEPTH))
		n = 1u << (4 * DEPTH);
	for (unsigned i = 0; i < n; i++)
		step(DEPTH, i);
	char line[64];
	int len = snprintf(line, sizeof(line), "stacks %u kept %lu\n", n, n_kept);
	return write(1, line, (size_t)len) == len ? 0 : 1;
}
