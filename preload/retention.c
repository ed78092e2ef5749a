/* Thinning instead of rotation: a long run keeps its first dump, its
 * newest, and files spread over the whole run, growing coarser as it goes,
 * so that a leak that started hours ago is still visible. When one file
 * too many is on disk, the interior file whose neighbours are closest
 * together (in dump numbers) is removed; repeated, this keeps the spacing
 * even. Only files this process wrote are ever touched, in the directory
 * each went to (dumpdir.h: it changes after a privilege drop).
 *
 * The sweep of stale temporaries runs in directories shared with other
 * processes and other users, perhaps /tmp: it removes a temporary only when
 * it is a regular file owned by our euid whose writer (the pid in its name)
 * no longer exists. It reads the directory with getdents64 into a stack
 * buffer, as opendir would allocate from the program's heap. */
#include "retention.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "dump.h"
#include "dumpdir.h"
#include "log.h"

struct kept_dump {
	unsigned seq;
	dumpdir_place place;
};

static struct kept_dump *kept;
static size_t n_kept, cap_kept;

static void remove_dump(const struct kept_dump *k)
{
	char path[4200], name[64];
	dumpdir_path(k->place, path, sizeof(path));
	dump_file_name((int)getpid(), k->seq, name, sizeof(name));
	size_t len = strlen(path);
	ht_snprintf(path + len, sizeof(path) - len, "/%s", name);
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
	kept[n_kept++] = (struct kept_dump){seq, dumpdir_written()};
	if (n_kept <= ht_config.keep)
		return;
	/* keep >= 1; with 1 the newest alone stays, with 2 first and newest. */
	size_t victim = 0;
	if (n_kept > 2) {
		victim = 1;
		for (size_t i = 2; i + 1 < n_kept; i++)
			if (kept[i + 1].seq - kept[i - 1].seq <
			    kept[victim + 1].seq - kept[victim - 1].seq)
				victim = i;
	}
	if (ht_config.keep == 1)
		victim = 0;
	remove_dump(&kept[victim]);
	memmove(&kept[victim], &kept[victim + 1],
		(n_kept - victim - 1) * sizeof(*kept));
	n_kept--;
}

void retention_postfork_child(void)
{
	n_kept = 0;
}

/* ".heaptrace.<pid>.<anything>.tmp" (dump.c's temporaries, compressed
 * or not, with or without a random part) -> pid, or 0. */
static long tmp_owner(const char *name)
{
	static const char prefix[] = ".heaptrace.";
	size_t len = strlen(name);
	if (strncmp(name, prefix, sizeof(prefix) - 1) != 0 ||
	    len < sizeof(prefix) + 5 || strcmp(name + len - 4, ".tmp") != 0)
		return 0;
	char *end;
	long pid = strtol(name + sizeof(prefix) - 1, &end, 10);
	return *end == '.' && pid > 0 ? pid : 0;
}

static void sweep_entry(int dirfd, const char *name, uid_t euid)
{
	struct stat st;
	long pid = tmp_owner(name);
	if (pid <= 0 || pid == getpid())
		return;
	if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
		return; /* alive (or not ours to judge) */
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) ||
	    !S_ISREG(st.st_mode) || st.st_uid != euid)
		return;
	unlinkat(dirfd, name, 0);
}

void retention_sweep_stale(void)
{
	char dir[4200];
	dumpdir_next(dir, sizeof(dir));
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	uid_t euid = geteuid();
	/* struct linux_dirent64 records; the 8-byte alignment they need. */
	_Alignas(8) char buf[4096];
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			struct dirent64 *e = (struct dirent64 *)(buf + off);
			if (e->d_type == DT_REG || e->d_type == DT_UNKNOWN)
				sweep_entry(fd, e->d_name, euid);
			off += e->d_reclen;
		}
	}
	close(fd);
}
