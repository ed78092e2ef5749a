// Threads that end in awkward ways under heaptrace (tests/test_hostile.py).
//   hostile_threads tls N     N short-lived threads, eight at a time, half
//                             joined and half detached; each allocates in a
//                             C++ thread_local destructor (tls_dtor_keep:
//                             one 19-byte block kept per thread) and in a
//                             pthread key destructor that sets its key again
//                             so that glibc runs it twice (key_dtor_keep:
//                             one 17-byte block kept per run)
//   hostile_threads cancel N  N threads cancelled at a cancellation point
//                             while allocating (their cleanup handlers free
//                             what they hold), then N threads that call
//                             pthread_exit() 20 calls deep after keeping one
//                             23-byte block each (exit_keep)
// Prints what it counted and exits 0; alarm() ends a hung run.
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static std::atomic<int> tls_runs{0}, key_runs{0}, kept_n{0}, freed_rings{0};
static void *kept[1 << 16];
static pthread_key_t key;

static void keep(void *p)
{
	int i = kept_n.fetch_add(1);
	if (i < (1 << 16))
		kept[i] = p;
	else
		std::free(p);
}

extern "C" __attribute__((noinline)) void *tls_dtor_keep(void)
{
	return std::malloc(19);
}

extern "C" __attribute__((noinline)) void *key_dtor_keep(void)
{
	return std::malloc(17);
}

extern "C" __attribute__((noinline)) void *exit_keep(void)
{
	return std::malloc(23);
}

struct Local {
	std::vector<int> data;
	~Local()
	{
		std::vector<char> scratch(300, 'x'); // allocated and freed here
		keep(tls_dtor_keep());
		tls_runs++;
	}
};

static thread_local Local local;

// The first value ('A') is replaced by a second ('B') from inside the
// destructor, so glibc runs it a second time.
static void key_dtor(void *value)
{
	char *v = static_cast<char *>(value);
	keep(key_dtor_keep());
	if (v[0] == 'A') {
		char *again = static_cast<char *>(std::malloc(33));
		again[0] = 'B';
		pthread_setspecific(key, again);
	}
	std::free(v);
	key_runs++;
}

static void *tls_thread(void *)
{
	local.data.assign(50, 1); // constructs the thread_local
	char *v = static_cast<char *>(std::malloc(33));
	v[0] = 'A';
	pthread_setspecific(key, v);
	return nullptr;
}

static void run_tls(int n)
{
	pthread_key_create(&key, key_dtor);
	pthread_attr_t detached;
	pthread_attr_init(&detached);
	pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < n; i += 8) {
		pthread_t t[8];
		int batch = n - i < 8 ? n - i : 8;
		for (int k = 0; k < batch; k++)
			if (pthread_create(&t[k], k % 2 ? &detached : nullptr, tls_thread, nullptr))
				std::exit(1);
		for (int k = 0; k < batch; k += 2)
			pthread_join(t[k], nullptr);
	}
	while (tls_runs.load() < n || key_runs.load() < 2 * n)
		usleep(1000); // the last detached threads
	std::printf("threads %d tls_dtors %d key_dtors %d\n", n, tls_runs.load(), key_runs.load());
}

struct Ring {
	void *slot[16] = {};
	std::atomic<int> allocated{0};
};

static void free_ring(void *arg)
{
	Ring *r = static_cast<Ring *>(arg);
	for (void *&p : r->slot) {
		std::free(p);
		p = nullptr;
	}
	freed_rings++;
}

static void *cancel_thread(void *arg)
{
	Ring *r = static_cast<Ring *>(arg);
	pthread_cleanup_push(free_ring, r);
	for (unsigned i = 0;; i++) {
		std::free(r->slot[i % 16]);
		r->slot[i % 16] = std::malloc(32 + i % 500);
		r->allocated++;
		pthread_testcancel();
	}
	pthread_cleanup_pop(1);
	return nullptr;
}

static volatile int really_exit = 1; // keeps GCC from calling the chain endless

static int exit_deep(int depth)
{
	if (depth > 0)
		return exit_deep(depth - 1) + 1; // not a tail call
	keep(exit_keep());
	if (really_exit)
		pthread_exit(reinterpret_cast<void *>(7));
	return 0;
}

static void *exit_thread(void *)
{
	exit_deep(20);
	return nullptr;
}

static void run_cancel(int n)
{
	int canceled = 0, exited = 0;
	for (int i = 0; i < n; i++) {
		Ring ring;
		pthread_t t;
		if (pthread_create(&t, nullptr, cancel_thread, &ring))
			std::exit(1);
		while (ring.allocated.load() < 100)
			sched_yield();
		pthread_cancel(t);
		void *ret;
		pthread_join(t, &ret);
		canceled += ret == PTHREAD_CANCELED;
	}
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, nullptr, exit_thread, nullptr))
			std::exit(1);
		void *ret;
		pthread_join(t, &ret);
		exited += ret == reinterpret_cast<void *>(7);
	}
	std::printf("canceled %d cleaned %d exited %d\n", canceled, freed_rings.load(), exited);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		std::fprintf(stderr, "usage: hostile_threads tls|cancel N\n");
		return 2;
	}
	alarm(120);
	std::string mode = argv[1];
	int n = std::atoi(argv[2]);
	if (mode == "tls")
		run_tls(n);
	else if (mode == "cancel")
		run_cancel(n);
	else
		return 2;
	return 0;
}
