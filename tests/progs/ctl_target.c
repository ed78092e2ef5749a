/* A service that does what real ones do to the places `heaptrace dump`
 * used to guess from, for tests/test_control.py. Each argument is one
 * thing it does before it is ready, in order:
 *   environ  overwrites its environment the way setproctitle does (nginx,
 *            postgres): the strings copied elsewhere, the original area,
 *            which /proc/PID/environ shows, overwritten with a title
 *   chdir    chdir("/")
 *   usr1     installs its own SIGUSR1 handler, which counts
 *   nobody   drops from root to the user nobody
 *   fork     forks; the child does the same as the parent from here
 *   daemon   forks, the parent exits and the child goes on in a session
 *            of its own, as a daemon starts
 *   exec     runs tool_sleeper (next to it) as a child, fork and exec
 *   closefds closes every descriptor from 3 up, as daemons do, and opens
 *            /dev/null 8 times, which takes the numbers heaptrace had
 * It holds 8 blocks of 10000 bytes, prints "ready PID" (the child's line
 * follows after a fork) and sleeps until SIGTERM (at most 60 s), then
 * prints "usr1 N" with the SIGUSR1s it received (and after closefds
 * "fds ok" if its 8 descriptors are still its /dev/null) and exits 0. */
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sleeper.h"

extern char **environ;
void *held[8];

/* As nginx's ngx_init_setproctitle: the environment moves to the heap,
 * and argv[0] may then grow over the area the strings held. */
static void overwrite_environ(int argc, char **argv)
{
	char *start = argv[0], *end = argv[0] + strlen(argv[0]) + 1;
	int n = 0;
	for (int i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	for (; environ[n]; n++)
		if (environ[n] == end)
			end = environ[n] + strlen(environ[n]) + 1;
	char **moved = malloc(sizeof(char *) * (size_t)(n + 1));
	for (int i = 0; i < n; i++)
		moved[i] = strdup(environ[i]);
	moved[n] = NULL;
	environ = moved;
	memset(start, 0, (size_t)(end - start));
	snprintf(start, (size_t)(end - start), "ctl_target: worker process");
}

static int drop_to_nobody(void)
{
	struct passwd *pw = getpwnam("nobody");
	return !pw || setgroups(0, NULL) || setgid(pw->pw_gid) ||
	       setuid(pw->pw_uid);
}

static int nulls[8], n_nulls;

static void close_all(void)
{
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	for (n_nulls = 0; n_nulls < 8; n_nulls++)
		nulls[n_nulls] = open("/dev/null", O_RDWR);
}

/* Each of them still open on /dev/null: nobody closed or reused them. */
static int nulls_intact(void)
{
	struct stat null_st, st;
	if (stat("/dev/null", &null_st))
		return 0;
	for (int i = 0; i < n_nulls; i++)
		if (fstat(nulls[i], &st) || st.st_rdev != null_st.st_rdev)
			return 0;
	return 1;
}

static void run_sleeper(const char *self)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s", self);
	char *slash = strrchr(path, '/');
	snprintf(slash ? slash + 1 : path,
		 sizeof(path) - (size_t)(slash ? slash + 1 - path : 0),
		 "tool_sleeper");
	pid_t pid = fork();
	if (pid == 0) {
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	printf("child %d\n", (int)pid);
}

int main(int argc, char **argv)
{
	char **args = malloc(sizeof(char *) * (size_t)argc);
	for (int i = 0; i < argc; i++) /* the title overwrites argv too */
		args[i] = strdup(argv[i]);
	for (int i = 0; i < 8; i++)
		held[i] = malloc(10000);
	signal(SIGTERM, on_term);
	for (int i = 1; i < argc; i++) {
		const char *a = args[i];
		if (!strcmp(a, "environ"))
			overwrite_environ(argc, argv);
		else if (!strcmp(a, "chdir") && chdir("/"))
			return 2;
		else if (!strcmp(a, "usr1"))
			signal(SIGUSR1, count_usr1);
		else if (!strcmp(a, "nobody") && drop_to_nobody())
			return 3;
		else if (!strcmp(a, "fork"))
			fflush(stdout), fork();
		else if (!strcmp(a, "exec"))
			run_sleeper(args[0]);
		else if (!strcmp(a, "daemon") && fork() > 0)
			_exit(0);
		else if (!strcmp(a, "daemon"))
			setsid();
		else if (!strcmp(a, "closefds"))
			close_all();
	}
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	sleep_until_term();
	if (n_nulls)
		printf("fds %s\n", nulls_intact() ? "ok" : "lost");
	return held[0] == NULL;
}
