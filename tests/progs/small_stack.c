/* A thread on a 16 KiB stack that allocates (tests/test_hostile.py). The
 * stack is the program's own mapping, with a guard page below it that
 * turns an overflow into a crash, and painted, so that the deepest byte
 * written tells how much of it was used. The thread first allocates and
 * frees 1000 blocks in warm_up() (the allocator's and the tracer's one-time
 * set-up for a thread, and free blocks for what follows to reuse without
 * growing the heap), paints the stack below itself again, recurses DEPTH
 * frames and, at the
 * bottom, keeps 1000 blocks of 48 bytes from small_leaf(), live until
 * exit. Prints "used N leaf M": N bytes of the stack written in all, M of
 * them below small_leaf's frame after the warm-up, which is what each
 * allocation costs in stack (the allocator's and the tracer's). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define STACK (16 * 1024)
#define DEPTH 20
#define PAINT 0xa5

void *kept[1000];
static char *stack, *leaf_frame;

__attribute__((noinline)) void small_leaf(int i)
{
	leaf_frame = __builtin_frame_address(0);
	kept[i] = malloc(48);
}

__attribute__((noinline)) static int descend(int depth)
{
	if (depth == 0) {
		for (int i = 0; i < 1000; i++)
			small_leaf(i);
		return 0;
	}
	return descend(depth - 1) + 1;
}

static char *deepest_written(void)
{
	char *p = stack;
	while (p < stack + STACK && (unsigned char)*p == PAINT)
		p++;
	return p;
}

__attribute__((noinline)) void warm_up(void)
{
	for (int i = 0; i < 1000; i++)
		kept[i] = malloc(48);
	for (int i = 0; i < 1000; i++)
		free(kept[i]);
}

static void *thread_main(void *arg)
{
	(void)arg;
	warm_up();
	char here;
	/* memset is a leaf: it writes nothing of its own this far down. */
	memset(stack, PAINT, (size_t)(&here - 512 - stack));
	descend(DEPTH);
	return NULL;
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	char *map = mmap(NULL, STACK + page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED || mprotect(map, page, PROT_NONE))
		return 1;
	stack = map + page;
	memset(stack, PAINT, STACK);
	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	if (pthread_attr_setstack(&attr, stack, STACK))
		return 1;
	/* The whole stack, first allocation included. */
	if (pthread_create(&t, &attr, thread_main, NULL) || pthread_join(t, NULL))
		return 1;
	char *low = deepest_written();
	printf("used %td leaf %td\n", stack + STACK - low, leaf_frame - low);
	return 0;
}
