/* The control socket's protocol. A client connects to the abstract UNIX
 * socket @heaptrace/<pid> (no file: nothing to clean up, and the name
 * works whatever the program did to its working directory, environment
 * or signals), writes one line and reads lines until the server closes:
 *
 *   status  ->  ok, then `key value` lines: what the process does now
 *   dump    ->  ok and `path <file>` once the file is whole, or error
 *
 * Who may ask is decided per connection from the peer's credentials
 * (SO_PEERCRED) against the effective uid the process has now, so a
 * server that dropped from root to nobody answers nobody (and root). */
#include "control.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "dumpdir.h"
#include "dumper.h"
#include "dumpsig.h"
#include "log.h"

#define PROTOCOL_VERSION 1

socklen_t control_address(pid_t pid, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	/* sun_path[0] stays 0: the abstract namespace. */
	size_t n = ht_snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1,
			       "heaptrace/%d", (int)pid);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static void say(int fd, const char *text, size_t len)
{
	while (len) {
		ssize_t n = send(fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

void control_refuse(int fd, const char *why)
{
	char line[256];
	size_t n = ht_snprintf(line, sizeof(line), "error %s\n", why);
	say(fd, line, n < sizeof(line) ? n : sizeof(line) - 1);
}

int control_admit(int fd)
{
	struct ucred peer;
	socklen_t len = sizeof(peer);
	uid_t me = geteuid();
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0 &&
	    (peer.uid == me || peer.uid == 0))
		return 1;
	char why[128];
	ht_snprintf(why, sizeof(why),
		    "permission denied: this process answers uid %u and root",
		    (unsigned)me);
	control_refuse(fd, why);
	return 0;
}

static void status(int fd, const char *http)
{
	char dir[4200], out[6144];
	enum dumpsig_state sig = dumpsig_state();
	dumpdir_next(dir, sizeof(dir));
	size_t n = ht_snprintf(
	    out, sizeof(out),
	    "ok\nversion %d\npid %d\neuid %u\nrate %llu\ninterval_ms %llu\n"
	    "signal %d\nsignal_state %s\ndir %s\ncompress %d\nhttp %s\n"
	    "dumps %lu\n",
	    PROTOCOL_VERSION, (int)getpid(), (unsigned)geteuid(),
	    (unsigned long long)ht_config.rate,
	    (unsigned long long)ht_config.interval_ms,
	    sig == DUMPSIG_NONE ? 0 : ht_config.signal,
	    sig == DUMPSIG_NONE ? "none" : sig == DUMPSIG_LOST ? "lost" : "owned",
	    dir, ht_config.compress, *http ? http : "none",
	    dumper_dumps_written());
	say(fd, out, n < sizeof(out) ? n : sizeof(out) - 1);
}

static void dump(int fd)
{
	char path[4200], out[4300];
	int err = dumper_request("control", path, sizeof(path));
	size_t n;
	if (err == ECANCELED)
		n = ht_snprintf(out, sizeof(out),
				"error the process is exiting: its exit dump is "
				"its last\n");
	else if (err) {
		dumpdir_next(path, sizeof(path));
		n = ht_snprintf(out, sizeof(out),
				"error cannot write a dump in %s (%s)\n", path,
				strerror(err));
	} else
		n = ht_snprintf(out, sizeof(out), "ok\npath %s\n", path);
	say(fd, out, n < sizeof(out) ? n : sizeof(out) - 1);
}

void control_answer(int fd, const char *line, size_t len, const char *http)
{
	if (len && line[len - 1] == '\r')
		len--;
	if (len == 6 && !memcmp(line, "status", 6))
		status(fd, http);
	else if (len == 4 && !memcmp(line, "dump", 4))
		dump(fd);
	else
		control_refuse(fd, "unknown request (status or dump)");
}
