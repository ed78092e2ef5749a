/* The cache of frame rules (preload/cfi.c) under ThreadSanitizer: 8
 * threads look up the rules of the same 6,000 addresses in different
 * orders while one of them keeps calling cfi_forget(), as dlclose() does.
 * Every answer must be the rule read from .eh_frame by the first, uncached
 * lookup: a torn or mispacked cache entry, or a stale one served after a
 * forget, gives another. tests/test_core.py runs it.
 *
 * The addresses are spread over libc's code and this program's own (built
 * with frame pointers, for rbp-based rules). Prints one line with how many
 * of each kind of rule were checked; on a mismatch prints it and exits 1. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../preload/cfi.h"

#define THREADS 8
#define NPCS 6000
#define ROUNDS 10

static uintptr_t pcs[NPCS];
static struct cfa_rule want[NPCS];
static atomic_int failed;
static pthread_barrier_t start;

/* A function with a frame of its own, so that some addresses have the
 * CFA in rbp. */
__attribute__((noinline)) static unsigned own_frame(unsigned n)
{
	volatile char buf[64];
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(n + i);
	return (unsigned)buf[n % sizeof(buf)];
}

static int same(struct cfa_rule a, struct cfa_rule b)
{
	return a.base == b.base && a.offset == b.offset &&
	       a.rbp_saved == b.rbp_saved &&
	       (!a.rbp_saved || a.rbp_offset == b.rbp_offset);
}

static void *worker(void *arg)
{
	unsigned tid = (unsigned)(uintptr_t)arg;
	uint64_t s = 0x9e3779b97f4a7c15ULL * (tid + 1);
	pthread_barrier_wait(&start);
	for (int round = 0; round < ROUNDS; round++) {
		for (unsigned k = 0; k < NPCS; k++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			unsigned i = (unsigned)(s % NPCS);
			struct cfa_rule got = cfi_rule_at(pcs[i]);
			if (!same(got, want[i]) && atomic_fetch_add(&failed, 1) < 5)
				fprintf(stderr,
					"pc %#lx: base %d offset %d rbp %d/%d, "
					"first read %d %d %d/%d\n",
					(unsigned long)pcs[i], got.base,
					got.offset, got.rbp_saved,
					got.rbp_offset, want[i].base,
					want[i].offset, want[i].rbp_saved,
					want[i].rbp_offset);
			if (tid == 0 && k % 1000 == 0)
				cfi_forget();
		}
	}
	return NULL;
}

int main(void)
{
	if (cfi_init()) {
		fprintf(stderr, "rules: cannot map the cache\n");
		return 1;
	}
	/* libc's code from malloc on, and this program's own function. */
	uintptr_t libc = (uintptr_t)dlsym(RTLD_DEFAULT, "malloc");
	unsigned n = 0;
	for (; n < NPCS - 200; n++)
		pcs[n] = libc + (uintptr_t)n * 61;
	for (unsigned k = 0; n < NPCS; n++, k++)
		pcs[n] = (uintptr_t)own_frame + 4 + k % 40;
	unsigned kinds[4] = {0};
	for (unsigned i = 0; i < NPCS; i++) {
		want[i] = cfi_rule_at(pcs[i]);
		kinds[want[i].base]++;
	}
	pthread_barrier_init(&start, NULL, THREADS);
	pthread_t threads[THREADS];
	for (unsigned k = 0; k < THREADS; k++)
		pthread_create(&threads[k], NULL, worker, (void *)(uintptr_t)k);
	for (unsigned k = 0; k < THREADS; k++)
		pthread_join(threads[k], NULL);
	printf("rules: %u addresses, %u rsp-based, %u rbp-based, %u outermost, "
	       "%u unknown\n",
	       NPCS, kinds[CFA_RSP], kinds[CFA_RBP], kinds[CFA_END],
	       kinds[CFA_UNKNOWN]);
	return atomic_load(&failed) != 0;
}
