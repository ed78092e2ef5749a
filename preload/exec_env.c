/* Children that exec inherit LD_PRELOAD and so are traced by default, each
 * writing its own dumps under its own pid, which is what a user tracing a
 * service that spawns workers wants. A user who wants only this process
 * sets HEAPTRACE_FOLLOW_EXEC=0: LD_PRELOAD is then rewritten without
 * libheaptrace once, at start-up, before the program's own code runs (so
 * before it could have started threads that read the environment). */
#include "exec_env.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static const char *basename_of(const char *path, size_t len, size_t *out)
{
	const char *start = path;
	for (size_t i = 0; i < len; i++)
		if (path[i] == '/')
			start = path + i + 1;
	*out = len - (size_t)(start - path);
	return start;
}

/* HEAPTRACE_HTTP comes down to exec'd children with the environment, and
 * the port belongs to the process that took it. The first process given
 * the variable marks the environment HEAPTRACE_HTTP_OWNER=<its pid>; a
 * later process (an exec'd descendant) that finds the owner alive does
 * not try the port, and says nothing. One that finds it gone tries, and
 * says nothing if the port is taken (most likely by a daemon of the
 * family that took it over, server.c). The same process exec'ing a new
 * image (a wrapper's `exec ./service`) is still the owner: its old
 * listener was closed by the exec, and it serves again. */
static void http_owner(void)
{
	const char *s = getenv("HEAPTRACE_HTTP_OWNER");
	long owner = 0;
	char me[24];
	if (!ht_config.http)
		return;
	for (; s && *s >= '0' && *s <= '9' && owner < 1 << 22; s++)
		owner = owner * 10 + (*s - '0');
	if (owner > 0 && owner != getpid()) {
		ht_config.http_inherited = 1;
		if (kill((pid_t)owner, 0) == 0 || errno == EPERM)
			ht_config.http = 0;
		return;
	}
	ht_snprintf(me, sizeof(me), "%d", (int)getpid());
	setenv("HEAPTRACE_HTTP_OWNER", me, 1);
}

void exec_env_apply(void)
{
	http_owner();
	if (ht_config.follow_exec)
		return;
	Dl_info self;
	const char *preload = getenv("LD_PRELOAD");
	if (!preload || !dladdr((void *)exec_env_apply, &self) || !self.dli_fname)
		return;
	size_t own_len;
	const char *own = basename_of(self.dli_fname, strlen(self.dli_fname),
				      &own_len);
	char kept[4096];
	size_t used = 0;
	/* LD_PRELOAD entries are separated by spaces or colons. */
	for (const char *p = preload; *p;) {
		size_t len = strcspn(p, " :");
		size_t base_len;
		const char *base = basename_of(p, len, &base_len);
		int ours = base_len == own_len && memcmp(base, own, own_len) == 0;
		if (len && !ours && used + len + 2 < sizeof(kept)) {
			if (used)
				kept[used++] = ' ';
			memcpy(kept + used, p, len);
			used += len;
		}
		p += len;
		p += strspn(p, " :");
	}
	kept[used] = '\0';
	if (used)
		setenv("LD_PRELOAD", kept, 1);
	else
		unsetenv("LD_PRELOAD");
}
