/* spawn: run one program and report its own resource usage.
 *
 * The benchmark's runner is a Python process of some 20 MiB, and Linux keeps
 * the resident high-water mark across fork and exec: a program started
 * straight from it would report at least Python's peak RSS. This launcher is
 * small, starts the program from a fresh fork, sets the tracer's variables
 * (LD_PRELOAD and the like) only in that child, so the launcher itself is
 * never traced, and writes the child's rusage when it ends:
 *
 *   pid=123 exit=0 maxrss_kb=5120 utime_s=0.41 stime_s=0.02 wall_s=0.45
 *
 * SIGTERM and SIGINT are passed on to the child.
 *
 * usage: spawn RESULT_FILE [VAR=VALUE ...] -- PROGRAM [ARGS ...]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t child;

static void pass_on(int sig)
{
	if (child > 0)
		kill((pid_t)child, sig);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: spawn RESULT_FILE [VAR=VALUE ...] -- PROGRAM [ARGS ...]\n");
		return 127;
	}
	int dashes = 2;
	while (dashes < argc && strcmp(argv[dashes], "--") != 0)
		dashes++;
	if (dashes >= argc - 1) {
		fprintf(stderr, "spawn: no program after --\n");
		return 127;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = pass_on;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("spawn: fork");
		return 127;
	}
	if (pid == 0) {
		for (int i = 2; i < dashes; i++)
			putenv(argv[i]);
		execvp(argv[dashes + 1], argv + dashes + 1);
		perror("spawn: exec");
		_exit(127);
	}
	child = pid;
	int status;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0)
		;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	FILE *f = fopen(argv[1], "w");
	if (!f) {
		perror("spawn: result file");
		return 127;
	}
	fprintf(f, "pid=%d exit=%d maxrss_kb=%ld utime_s=%.6f stime_s=%.6f wall_s=%.6f\n", (int)pid,
		code, ru.ru_maxrss, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
		(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
		(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	fclose(f);
	return code;
}
