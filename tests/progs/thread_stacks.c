/* Thread stacks of known sizes, all held at the dump: argv[1] threads with
 * the default attributes from spawn_default, argv[2] with a 256 KiB stack
 * and a 64 KiB guard from spawn_small, and one on a stack the program
 * supplies (from mmap, not counted as a thread stack) from spawn_own. The
 * dump is taken with heaptrace_dump() once every thread runs (a thread
 * joins heaptrace's registry as it starts) and while each waits on a
 * pipe; it prints "dump: <rc>". */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define OWN_STACK (1u << 20)

static int gate[2];
static _Atomic int running;

static void *waiting_thread(void *arg)
{
	char c;
	atomic_fetch_add(&running, 1);
	while (read(gate[0], &c, 1) < 0)
		;
	return arg;
}

static void start(pthread_t *t, const pthread_attr_t *attr)
{
	if (pthread_create(t, attr, waiting_thread, NULL)) {
		perror("pthread_create");
		exit(1);
	}
}

__attribute__((noinline)) void spawn_default(pthread_t *t, int n)
{
	for (int i = 0; i < n; i++)
		start(&t[i], NULL);
}

__attribute__((noinline)) void spawn_small(pthread_t *t, int n)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	pthread_attr_setguardsize(&attr, 64 << 10);
	for (int i = 0; i < n; i++)
		start(&t[i], &attr);
	pthread_attr_destroy(&attr);
}

__attribute__((noinline)) void spawn_own(pthread_t *t)
{
	pthread_attr_t attr;
	void *stack = mmap(NULL, OWN_STACK, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, stack, OWN_STACK);
	start(t, &attr);
	pthread_attr_destroy(&attr);
}

int main(int argc, char **argv)
{
	int n_default = argc > 1 ? atoi(argv[1]) : 4;
	int n_small = argc > 2 ? atoi(argv[2]) : 4;
	int n = n_default + n_small + 1;
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	if (!t || pipe(gate))
		return 1;
	spawn_default(t, n_default);
	spawn_small(t + n_default, n_small);
	spawn_own(t + n - 1);
	while (atomic_load(&running) < n)
		usleep(1000);
	int (*dump)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "heaptrace_dump");
	printf("dump: %d\n", dump ? dump() : -1);
	fflush(stdout);
	close(gate[1]);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	return 0;
}
