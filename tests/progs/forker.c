/* fork under heaptrace (tests/test_fork.py): the parent forks while a second
 * thread allocates and frees without pause, so the fork can land in the
 * middle of the tracer's work. Modes:
 *   forker fork N       N children, one after another; each allocates
 *                       child_keep (9 x 3000 B) and exits normally
 *   forker signal       one child allocates child_keep, prints
 *                       "child PID ready" and reads stdin to its end, so
 *                       the test can signal it before it exits
 *   forker exec PROG..  one child that execs PROG (the preload is inherited)
 *   forker vfork PROG.. one vfork()ed child that, as Python's subprocess
 *                       does, resets SIGUSR1 to its default and execs PROG;
 *                       it shares the parent's memory until then
 *   forker forkexec PROG.. one fork()ed child that, as git's run-command
 *                       does, puts every handled signal back to its
 *                       default before it execs PROG
 * The parent holds parent_keep (4 x 500 B, from before the forks, so
 * children inherit it) and, after the children, parent_after (6 x 700 B).
 * It prints "child PID exited STATUS" per child and exits 0. alarm() ends
 * a hung run. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void *kept[32];
int nkept;
static atomic_int stop;
static atomic_long churned;

static void parent_keep(void)
{
	for (int i = 0; i < 4; i++)
		kept[nkept++] = malloc(500);
}

static void child_keep(void)
{
	for (int i = 0; i < 9; i++)
		kept[nkept++] = malloc(3000);
}

static void parent_after(void)
{
	for (int i = 0; i < 6; i++)
		kept[nkept++] = malloc(700);
}

static void *churn(void *arg)
{
	(void)arg;
	for (long i = 0; !atomic_load(&stop); i++) {
		char *p = malloc(16 + (size_t)(i % 1024));
		p[0] = (char)i;
		free(p);
		atomic_fetch_add(&churned, 1);
	}
	return NULL;
}

static void wait_stdin_eof(void)
{
	char buf[64];
	ssize_t n;
	while ((n = read(0, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		;
}

/* git's run-command, between fork and exec: a signal caught now must not
 * run the parent's handler in the child. */
static void default_handlers(void)
{
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction old;
		if (sigaction(sig, NULL, &old) == 0 && old.sa_handler != SIG_DFL &&
		    old.sa_handler != SIG_IGN)
			signal(sig, SIG_DFL);
	}
}

static void in_child(const char *mode, char **exec_argv)
{
	if (!strcmp(mode, "vfork"))
		signal(SIGUSR1, SIG_DFL);
	if (!strcmp(mode, "forkexec"))
		default_handlers();
	if (!strcmp(mode, "exec") || !strcmp(mode, "vfork") ||
	    !strcmp(mode, "forkexec")) {
		execv(exec_argv[0], exec_argv);
		_exit(127);
	}
	child_keep();
	if (!strcmp(mode, "signal")) {
		printf("child %d ready\n", (int)getpid());
		fflush(stdout);
		wait_stdin_eof();
	}
	exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: forker fork N | signal - | exec PROG... | vfork PROG... "
				"| forkexec PROG...\n");
		return 2;
	}
	const char *mode = argv[1];
	int children = !strcmp(mode, "fork") ? atoi(argv[2]) : 1;
	alarm(30);
	parent_keep();
	pthread_t thread;
	if (pthread_create(&thread, NULL, churn, NULL))
		return 1;
	while (atomic_load(&churned) < 1000)
		;
	for (int i = 0; i < children; i++) {
		long before = atomic_load(&churned);
		while (atomic_load(&churned) < before + 100)
			; /* the other thread is allocating right now */
		fflush(stdout);
		pid_t pid = strcmp(mode, "vfork") ? fork() : vfork();
		if (pid < 0)
			return 1;
		if (pid == 0)
			in_child(mode, argv + 2);
		int status;
		if (waitpid(pid, &status, 0) != pid)
			return 1;
		printf("child %d exited %d\n", (int)pid,
		       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	parent_after();
	atomic_store(&stop, 1);
	pthread_join(thread, NULL);
	return 0;
}
