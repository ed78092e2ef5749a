/* Buffers are slots of chunks mapped from the arena, each chunk twice the
 * size of the one before, so that a few chunks serve any number of
 * threads. A slot is claimed with a compare-and-swap of its flag, without
 * a lock: a thread claims once, on its first capture, and a thread-
 * specific value's destructor clears the flag when the thread exits.
 * Chunks are only ever added, at the head of the list, so a reader never
 * sees one go away.
 *
 * A slot is a guard page, the walk stack and the buffer, in that order,
 * so that the stack's top is the buffer's start and it grows down, away
 * from it. The chunk is reserved lazily (arena.h): a stack that is never
 * walked on costs no memory, and its guard page is made inaccessible only
 * when a thread first walks on it (mprotect splits the mapping, and most
 * threads never need libunwind when the frame walker is on). */
#include "framebuf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include "altstack.h"
#include "arena.h"
#include "thread_state.h"

#define FIRST_SLOTS 64
#define MAX_SLOTS (64 << 10)

struct chunk {
	struct chunk *next;
	size_t slots;
	uintptr_t *base;
	_Atomic unsigned char used[]; /* slots of them, then the slots */
};

static struct chunk *_Atomic chunks;
static size_t guard;  /* bytes of a slot's guard page; 0 without a stack */
static size_t stride; /* bytes of a slot */
static pthread_key_t key;
static int have_key;
static __thread int stack_ready; /* this thread's guard page is in place */

static void on_thread_exit(void *flag)
{
	ht_thread.frames = NULL;
	stack_ready = 0;
	atomic_store_explicit((_Atomic unsigned char *)flag, 0,
			      memory_order_release);
}

void framebuf_init(unsigned n)
{
	stride = n * sizeof(uintptr_t);
	if (ALTSTACK_BYTES) {
		long page = sysconf(_SC_PAGESIZE);
		guard = page > 0 ? (size_t)page : 4096;
		stride = (guard + ALTSTACK_BYTES + stride + guard - 1) &
			 ~(guard - 1);
	}
	have_key = pthread_key_create(&key, on_thread_exit) == 0;
}

static struct chunk *add_chunk(size_t slots)
{
	size_t align = guard ? guard : 64;
	size_t head = (sizeof(struct chunk) + slots + align - 1) & ~(align - 1);
	struct chunk *c = arena_map(head + slots * stride);
	if (!c)
		return NULL;
	c->slots = slots;
	c->base = (uintptr_t *)((char *)c + head);
	c->next = atomic_load(&chunks);
	while (!atomic_compare_exchange_weak(&chunks, &c->next, c))
		;
	return c;
}

static uintptr_t *buffer(const struct chunk *c, size_t i)
{
	return (uintptr_t *)((char *)c->base + i * stride + guard +
			     ALTSTACK_BYTES);
}

static uintptr_t *claim(_Atomic unsigned char **flag)
{
	size_t biggest = 0;
	for (;;) {
		for (struct chunk *c = atomic_load(&chunks); c; c = c->next) {
			for (size_t i = 0; i < c->slots; i++) {
				unsigned char free_slot = 0;
				if (!atomic_load_explicit(&c->used[i],
							  memory_order_relaxed) &&
				    atomic_compare_exchange_strong(&c->used[i],
								   &free_slot, 1)) {
					*flag = &c->used[i];
					return buffer(c, i);
				}
			}
			if (c->slots > biggest)
				biggest = c->slots;
		}
		size_t slots = biggest ? biggest * 2 : FIRST_SLOTS;
		if (!add_chunk(slots > MAX_SLOTS ? MAX_SLOTS : slots))
			return NULL;
	}
}

uintptr_t *framebuf_get(void)
{
	if (ht_thread.frames)
		return ht_thread.frames;
	_Atomic unsigned char *flag;
	if (!have_key || !stride)
		return NULL;
	uintptr_t *buf = claim(&flag);
	if (!buf)
		return NULL;
	if (pthread_setspecific(key, (void *)flag) != 0) {
		atomic_store(flag, 0); /* it could never be given back */
		return NULL;
	}
	ht_thread.frames = buf;
	return buf;
}

void *framebuf_stack(void)
{
	char *top = (char *)ht_thread.frames;
	if (!top)
		return NULL;
	if (ALTSTACK_BYTES && !stack_ready) {
		if (mprotect(top - ALTSTACK_BYTES - guard, guard, PROT_NONE))
			return NULL;
		stack_ready = 1;
	}
	return top;
}

void framebuf_postfork_child(void)
{
	for (struct chunk *c = atomic_load(&chunks); c; c = c->next)
		for (size_t i = 0; i < c->slots; i++)
			atomic_store(&c->used[i],
				     buffer(c, i) == ht_thread.frames);
}
