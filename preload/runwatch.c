/* `heaptrace run` replaces itself with the command, and a watcher it
 * forked off names the processes traced and their dumps. The watcher must
 * not work out where dumps go (the directory rule and the fallback after a
 * privilege drop are the preload's, dumpdir.c), so each process of the run
 * says it: every numbered dump's path is sent to the watcher's abstract
 * socket @heaptrace/run/<pid>, <pid> being the command's, which
 * HEAPTRACE_RUN carries down to forked and exec'd descendants. The
 * watcher knows the sender by SO_PEERCRED, so a process that exits just
 * after its dump is still named, and one that dropped privileges too
 * (abstract sockets have no permissions).
 *
 * A connection per dump, non-blocking: a full backlog or no watcher left
 * loses that notice and nothing else. The data waits in the socket after
 * close until the watcher accepts it.
 *
 * HEAPTRACE_RUN=+<pid> means the command has not said where its dumps go
 * yet: the first image loaded with heaptrace says it, on stderr and to the
 * watcher (`dir <dir>`, the run's directory), and drops the `+`, so an
 * `env X=1 prog` or `sh -c 'exec prog'` says it once. */
#include "runwatch.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "dump.h"
#include "dumpdir.h"
#include "log.h"

/* Sends `<key> <value>` to the watcher, if one listens. */
static void tell(const char *key, const char *value)
{
	struct sockaddr_un a;
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	/* sun_path[0] stays 0: the abstract namespace. */
	size_t n = ht_snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1,
			       "heaptrace/run/%d", ht_config.run_pid);
	socklen_t alen =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	char line[4300];
	size_t len = ht_snprintf(line, sizeof(line), "%s %s\n", key, value);
	if (len >= sizeof(line))
		return;
	int saved = errno;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		if (connect(fd, (struct sockaddr *)&a, alen) == 0) {
			ssize_t ignored =
			    send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)ignored;
		}
		close(fd);
	}
	errno = saved;
}

void runwatch_start(void)
{
	if (!ht_config.run_announce)
		return;
	char dir[4200], name[64], plain[24];
	dumpdir_next(dir, sizeof(dir));
	dump_file_name(getpid(), DUMP_SEQ_ANY, name, sizeof(name));
	ht_log("pid %d: dumps go to %s/%s", (int)getpid(), dir, name);
	tell("dir", dir);
	ht_snprintf(plain, sizeof(plain), "%d", ht_config.run_pid);
	setenv("HEAPTRACE_RUN", plain, 1);
}

void runwatch_dumped(const char *path)
{
	if (ht_config.run_pid)
		tell("path", path);
}
