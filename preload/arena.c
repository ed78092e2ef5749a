/* Internal memory comes from mmap so that the tracer never calls the
 * allocator it traces, and so that its footprint can be measured on its
 * own: the long-lived mappings are remembered so a dump can report how much
 * of them is resident. */
#include "arena.h"

#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#define ARENA_SLOTS 256 /* the tables grow by pieces: stacktab.h */

static struct {
	_Atomic(void *) base;
	_Atomic size_t size;
} maps[ARENA_SLOTS];
static _Atomic uint64_t mapped;

void *arena_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* The tables are sparse: a transparent huge page would make one
	 * touched slot cost 2 MiB of resident memory. */
	madvise(p, size, MADV_NOHUGEPAGE);
	atomic_fetch_add_explicit(&mapped, size, memory_order_relaxed);
	for (int i = 0; i < ARENA_SLOTS; i++) {
		void *empty = NULL;
		if (atomic_compare_exchange_strong(&maps[i].base, &empty, p)) {
			atomic_store(&maps[i].size, size);
			break;
		}
	}
	return p;
}

void arena_unmap(void *p, size_t size)
{
	if (!p || munmap(p, size) != 0)
		return;
	atomic_fetch_sub_explicit(&mapped, size, memory_order_relaxed);
	for (int i = 0; i < ARENA_SLOTS; i++) {
		void *mine = p;
		if (atomic_compare_exchange_strong(&maps[i].base, &mine, NULL))
			break;
	}
}

uint64_t arena_mapped_bytes(void)
{
	return atomic_load_explicit(&mapped, memory_order_relaxed);
}

uint64_t arena_resident_bytes(void)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char vec[4096];
	uint64_t resident = 0;
	for (int i = 0; i < ARENA_SLOTS; i++) {
		char *base = atomic_load(&maps[i].base);
		size_t size = atomic_load(&maps[i].size);
		if (!base)
			continue;
		for (size_t off = 0; off < size; off += sizeof(vec) * (size_t)page) {
			size_t len = size - off;
			if (len > sizeof(vec) * (size_t)page)
				len = sizeof(vec) * (size_t)page;
			if (mincore(base + off, len, vec) != 0)
				break;
			for (size_t j = 0; j < (len + (size_t)page - 1) / (size_t)page; j++)
				resident += (vec[j] & 1) ? (uint64_t)page : 0;
		}
	}
	return resident;
}
