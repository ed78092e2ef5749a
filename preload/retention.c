/* Thinning instead of rotation: a long run keeps its first dump, its
 * newest, and files spread over the whole run, growing coarser as it goes,
 * so that a leak that started hours ago is still visible. When one file
 * too many is on disk, the interior file whose neighbours are closest
 * together (in dump numbers) is removed; repeated, this keeps the spacing
 * even. Only files this process wrote are ever touched. */
#include "retention.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "log.h"

static unsigned *kept;
static size_t n_kept, cap_kept;

static void remove_dump(unsigned seq)
{
	char path[4200];
	ht_snprintf(path, sizeof(path), "%s/heaptrace.%d.%04u.heap",
		    ht_config.dir, (int)getpid(), seq);
	unlink(path);
}

void retention_add(unsigned seq)
{
	if (ht_config.keep == 0)
		return;
	if (!kept) {
		cap_kept = (size_t)ht_config.keep + 1;
		kept = arena_map(cap_kept * sizeof(*kept));
		if (!kept)
			return;
	}
	kept[n_kept++] = seq;
	if (n_kept <= ht_config.keep)
		return;
	/* keep >= 1; with 1 the newest alone stays, with 2 first and newest. */
	size_t victim = 0;
	if (n_kept > 2) {
		victim = 1;
		for (size_t i = 2; i + 1 < n_kept; i++)
			if (kept[i + 1] - kept[i - 1] <
			    kept[victim + 1] - kept[victim - 1])
				victim = i;
	}
	if (ht_config.keep == 1)
		victim = 0;
	remove_dump(kept[victim]);
	memmove(&kept[victim], &kept[victim + 1],
		(n_kept - victim - 1) * sizeof(*kept));
	n_kept--;
}

void retention_forked(void)
{
	n_kept = 0;
}

/* ".heaptrace.<pid>.<seq>.heap.tmp" -> pid, or 0. */
static long tmp_owner(const char *name)
{
	static const char prefix[] = ".heaptrace.";
	size_t len = strlen(name);
	if (strncmp(name, prefix, sizeof(prefix) - 1) != 0 || len < 15 ||
	    strcmp(name + len - 9, ".heap.tmp") != 0)
		return 0;
	char *end;
	long pid = strtol(name + sizeof(prefix) - 1, &end, 10);
	return *end == '.' && pid > 0 ? pid : 0;
}

void retention_sweep_stale(void)
{
	DIR *dir = opendir(ht_config.dir);
	if (!dir)
		return;
	struct dirent *e;
	while ((e = readdir(dir))) {
		long pid = tmp_owner(e->d_name);
		if (pid <= 0 || pid == getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* alive (or not ours to judge) */
		char path[4200];
		ht_snprintf(path, sizeof(path), "%s/%s", ht_config.dir, e->d_name);
		unlink(path);
	}
	closedir(dir);
}
