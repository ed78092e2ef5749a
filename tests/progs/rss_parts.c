/* Memory of every kind `heaptrace rss` tells apart, in known amounts:
 * 64 MiB mapped anonymous and written from map_site (and 8 MiB more mapped
 * and given back with madvise(MADV_DONTNEED) from map_site too; 16 MiB
 * from unmap_site unmapped again in two halves; 4 MiB from remap_site
 * grown to 12 MiB with mremap), 32 MiB
 * from malloc at heap_site in 256 KiB blocks (above glibc's mmap
 * threshold: the allocator's own mmaps, which must count once, as heap)
 * and at small_site in 1 KiB blocks, and argv[1] threads (default 100)
 * from thread_site waiting on a pipe. The dump is taken with
 * heaptrace_dump() once every thread runs; it prints "dump: <rc>". With
 * argv[2] "grow", a dump before anything and one after the mappings come
 * first: a series whose RSS grows by every part. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB (1u << 20)

static int gate[2];
static _Atomic int running;
static void *volatile sink;

static void *waiting_thread(void *arg)
{
	char c;
	atomic_fetch_add(&running, 1);
	while (read(gate[0], &c, 1) < 0)
		;
	return arg;
}

__attribute__((noinline)) void *map_site(size_t n, int give_back)
{
	char *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memset(p, 1, n);
	if (give_back)
		madvise(p, n, MADV_DONTNEED);
	return p;
}

__attribute__((noinline)) void unmap_site(void)
{
	char *p = map_site(16 * MIB, 0);
	munmap(p + 8 * MIB, 8 * MIB);
	munmap(p, 8 * MIB);
}

__attribute__((noinline)) void *remap_site(void)
{
	void *p = mmap(NULL, 4 * MIB, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	p = mremap(p, 4 * MIB, 12 * MIB, MREMAP_MAYMOVE);
	if (p == MAP_FAILED) {
		perror("mremap");
		exit(1);
	}
	return p;
}

__attribute__((noinline)) void heap_site(void)
{
	for (unsigned i = 0; i < 96; i++)
		memset(sink = malloc(256 << 10), 1, 256 << 10);
}

__attribute__((noinline)) void small_site(void)
{
	for (unsigned i = 0; i < 8192; i++)
		memset(sink = malloc(1024), 1, 1024);
}

__attribute__((noinline)) void thread_site(pthread_t *t, int n)
{
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, waiting_thread, NULL)) {
			perror("pthread_create");
			exit(1);
		}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100;
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	if (!t || pipe(gate))
		return 1;
	int (*dump)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "heaptrace_dump");
	int grow = argc > 2 && strcmp(argv[2], "grow") == 0 && dump;
	if (grow)
		dump();
	map_site(64 * MIB, 0);
	map_site(8 * MIB, 1);
	unmap_site();
	remap_site();
	if (grow)
		dump();
	heap_site();
	small_site();
	thread_site(t, n);
	while (atomic_load(&running) < n)
		usleep(1000);
	printf("dump: %d\n", dump ? dump() : -1);
	fflush(stdout);
	close(gate[1]);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	return 0;
}
