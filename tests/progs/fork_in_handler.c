/* Forks from a signal handler while the same thread may be inside the
 * tracer's locks (tests/test_fork.py): main() calls heaptrace_dump() (the
 * dump lock) and pthread_detach() (the thread registry's lock) in a loop,
 * while an interval timer's SIGALRM handler forks a child that exits at
 * once. A fork hook that waited for a lock its own thread holds would hang
 * here for good; the test's timeout ends a hung run. pthread_create runs
 * with SIGALRM blocked: it allocates in glibc, and glibc's own fork waits
 * for a malloc lock that the interrupted thread holds. Prints "forks N"
 * and exits 0. */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t forks;

static void on_alarm(int sig)
{
	(void)sig;
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid > 0 && waitpid(pid, NULL, 0) == pid)
		forks++;
}

static void *nothing(void *arg)
{
	return arg;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 200;
	int (*dump)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "heaptrace_dump");
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval every = {{0, 2000}, {0, 2000}};
	setitimer(ITIMER_REAL, &every, NULL);
	sigset_t alrm;
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	for (int i = 0; i < rounds; i++) {
		pthread_t t;
		if (dump)
			dump();
		pthread_sigmask(SIG_BLOCK, &alrm, NULL);
		int rc = pthread_create(&t, NULL, nothing, NULL);
		pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
		if (rc == 0)
			pthread_detach(t);
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	printf("forks %d\n", (int)forks);
	return 0;
}
