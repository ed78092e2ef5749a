/* Started as root, dumps once through heaptrace_dump(), drops to the user
 * nobody as a server's worker does (setgroups, setgid, setuid: every
 * thread's credentials change, the dump thread's too), then dumps argv[1]
 * more times, for the test of dumps that follow privilege drops. Prints
 * "uid U, N dumps failed". */
#include <dlfcn.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *volatile sink[64];

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2, failed = 0;
	int (*dump)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "heaptrace_dump");
	struct passwd *pw = getpwnam("nobody");
	if (!dump || !pw) {
		puts(dump ? "no user nobody" : "heaptrace_dump not found");
		return 1;
	}
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	sink[0] = malloc(1000);
	failed += dump() != 0;
	if (setgroups(0, NULL) || setgid(gid) || setuid(uid)) {
		perror("dropping to nobody");
		return 1;
	}
	for (int i = 0; i < n && i < 63; i++) {
		sink[i + 1] = malloc(2000);
		failed += dump() != 0;
	}
	printf("uid %u, %d dumps failed\n", (unsigned)getuid(), failed);
	return 0;
}
