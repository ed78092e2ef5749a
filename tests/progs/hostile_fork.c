/* Process creation under heaptrace (tests/test_hostile.py), while two
 * threads allocate (in bursts, leaving the CPUs some room), so that every
 * fork lands in the middle of the tracer's work. Modes:
 *   hostile_fork loop N     N forks without exec, eight at a time; each
 *                           child allocates, frees some and ends with
 *                           status 3: every 50th by exit() (so it writes
 *                           its exit dump), the others by _exit(), which
 *                           keeps 1000 forks within the test's time
 *   hostile_fork daemon F   daemon(); the daemon allocates, writes
 *                           "daemon PID" to file F and exits 0
 *   hostile_fork spawn P..  posix_spawn(P...) and wait for it
 *   hostile_fork vfork P..  vfork() + execv(P...) and wait for it
 * Prints "child PID exited STATUS" per child and "done N" at the end (the
 * daemon mode's parent prints nothing: daemon() _exits it). alarm() ends a
 * hung run. */
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static atomic_int stop;
static atomic_long churned;

static void *churn(void *arg)
{
	void *keep[64] = {0};
	unsigned x = (unsigned)(size_t)arg;
	while (!atomic_load(&stop)) {
		x = x * 1103515245u + 12345u;
		free(keep[x >> 26]);
		keep[x >> 26] = malloc(16 + (x >> 8) % 2048);
		if (atomic_fetch_add(&churned, 1) % 256 == 0)
			usleep(200);
	}
	for (int i = 0; i < 64; i++)
		free(keep[i]);
	return NULL;
}

static void child_work(void)
{
	void *p[100];
	for (int i = 0; i < 100; i++)
		p[i] = malloc(100 + (size_t)i);
	for (int i = 0; i < 100; i += 2)
		free(p[i]);
}

static void report(pid_t pid)
{
	int status;
	if (waitpid(pid, &status, 0) != pid)
		exit(1);
	printf("child %d exited %d\n", (int)pid,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static void run_daemon(const char *file)
{
	if (daemon(1, 0))
		exit(1);
	child_work();
	FILE *f = fopen(file, "w");
	if (!f)
		exit(1);
	fprintf(f, "daemon %d\n", (int)getpid());
	fclose(f);
	exit(0);
}

static pid_t start_child(const char *mode, char **args, int i)
{
	pid_t pid = -1;
	if (!strcmp(mode, "loop")) {
		pid = fork();
		if (pid == 0) {
			child_work();
			if (i % 50 == 0)
				exit(3);
			_exit(3);
		}
	} else if (!strcmp(mode, "daemon")) {
		run_daemon(args[0]);
	} else if (!strcmp(mode, "spawn")) {
		if (posix_spawn(&pid, args[0], NULL, NULL, args, environ))
			return -1;
	} else if (!strcmp(mode, "vfork")) {
		pid = vfork();
		if (pid == 0) {
			execv(args[0], args);
			_exit(127);
		}
	}
	return pid;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: hostile_fork loop N | daemon FILE | spawn PROG.. | vfork PROG..\n");
		return 2;
	}
	const char *mode = argv[1];
	alarm(180);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn, (void *)(size_t)(i + 1));
	while (atomic_load(&churned) < 1000)
		;
	int n = !strcmp(mode, "loop") ? atoi(argv[2]) : 1;
	for (int i = 0; i < n; i += 8) {
		pid_t pids[8];
		int batch = n - i < 8 ? n - i : 8;
		for (int k = 0; k < batch; k++) {
			long before = atomic_load(&churned);
			while (atomic_load(&churned) < before + 20)
				; /* the other threads are allocating right now */
			fflush(stdout);
			pids[k] = start_child(mode, argv + 2, i + k);
			if (pids[k] < 0)
				return 1;
		}
		for (int k = 0; k < batch; k++)
			report(pids[k]);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("done %d\n", n);
	return 0;
}
