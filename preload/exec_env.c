/* Children that exec inherit LD_PRELOAD and so are traced by default, each
 * writing its own dumps under its own pid, which is what a user tracing a
 * service that spawns workers wants. A user who wants only this process
 * sets HEAPTRACE_FOLLOW_EXEC=0: LD_PRELOAD is then rewritten without
 * libheaptrace once, at start-up, before the program's own code runs (so
 * before it could have started threads that read the environment). */
#include "exec_env.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

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

void exec_env_apply(void)
{
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
