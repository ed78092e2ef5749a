/* Dumps follow privilege drops. The configured directory is judged at
 * start, with the credentials the process had then; a server started as
 * root whose workers become nobody cannot write in it afterwards. A refusal
 * is seen where it costs nothing, at dump time: when creating the file
 * fails with EACCES or EPERM, and whenever the effective uid differs from
 * the one last tried (the configured directory is tried first again). Dumps
 * then go to <TMPDIR or /tmp>/heaptrace-<euid>, made 0700.
 *
 * /tmp is shared and anyone may have made that name first: the fallback is
 * used only when open(O_DIRECTORY|O_NOFOLLOW) and fstat find a directory
 * (never a symlink) owned by the euid with no group or other access, and
 * the dump is written relative to that descriptor, so the directory checked
 * is the one written in. EROFS, ENOSPC and the like are not about
 * credentials: those dumps are skipped and the directory kept (issue 6).
 *
 * One line says where dumps go each time the place changes. */
#include "dumpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

/* Under the dump lock: the euid the place was chosen for (+1; 0 = none
 * yet), the place tried first, where the last dump went, the last place
 * said on stderr and whether the fallback's refusal has been said in this
 * streak. The first two are atomic: dumpdir_next reads them from any
 * thread. */
static _Atomic uint32_t checked_euid1;
static _Atomic dumpdir_place target;
static dumpdir_place written, announced;
static int refusal_said;

void dumpdir_path(dumpdir_place place, char *buf, size_t size)
{
	if (place == 0)
		ht_snprintf(buf, size, "%s", ht_config.dir);
	else
		ht_snprintf(buf, size, "%s/heaptrace-%u",
			    ht_config.fallback_base, place - 1);
}

static int is_refusal(int err)
{
	return err == EACCES || err == EPERM;
}

void dumpdir_next(char *buf, size_t size)
{
	uid_t euid = geteuid();
	dumpdir_place p = atomic_load(&target);
	if (atomic_load(&checked_euid1) != (uint32_t)euid + 1) {
		/* The next dump tries the configured directory first. */
		p = 0;
		if (faccessat(AT_FDCWD, ht_config.dir, W_OK | X_OK, AT_EACCESS) &&
		    is_refusal(errno))
			p = (dumpdir_place)euid + 1;
	}
	dumpdir_path(p, buf, size);
}

/* Says once per streak why the fallback cannot be used. */
static int refuse(const char *path, const char *why, int err)
{
	if (!refusal_said)
		ht_log("cannot use %s for dumps (%s); this dump is skipped",
		       path, why);
	refusal_said = 1;
	return -err;
}

/* The fallback of the current euid, made if missing, and checked. */
static int open_fallback(uid_t euid)
{
	char path[4200], why[128];
	struct stat st;
	dumpdir_path((dumpdir_place)euid + 1, path, sizeof(path));
	if (mkdir(path, 0700) && errno != EEXIST)
		return refuse(path, strerror(errno), errno);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		return refuse(path, err == ELOOP || err == ENOTDIR
				  ? "not a directory but a symlink or a file"
				  : strerror(err), err);
	}
	if (fstat(fd, &st)) {
		int err = errno;
		close(fd);
		return refuse(path, strerror(err), err);
	}
	if (st.st_uid != euid || (st.st_mode & 077)) {
		close(fd);
		ht_snprintf(why, sizeof(why),
			    "owned by uid %u with mode %o, not a private 0700 "
			    "directory of uid %u",
			    (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
			    (unsigned)euid);
		return refuse(path, why, EPERM);
	}
	refusal_said = 0;
	return fd;
}

static int open_place(dumpdir_place place)
{
	if (place)
		return open_fallback((uid_t)(place - 1));
	int fd = open(ht_config.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int dumpdir_open(dumpdir_place *place)
{
	uid_t euid = geteuid();
	if (atomic_load(&checked_euid1) != (uint32_t)euid + 1) {
		atomic_store(&target, 0);
		atomic_store(&checked_euid1, (uint32_t)euid + 1);
	}
	*place = atomic_load(&target);
	int fd = open_place(*place);
	if (fd == -EACCES && *place == 0) {
		/* Not even searchable for this euid. */
		atomic_store(&target, (dumpdir_place)euid + 1);
		*place = atomic_load(&target);
		fd = open_place(*place);
	}
	return fd;
}

int dumpdir_refused(int dirfd, int err, dumpdir_place *place)
{
	close(dirfd);
	if (!is_refusal(err) || *place != 0)
		return -err;
	*place = (dumpdir_place)geteuid() + 1;
	atomic_store(&target, *place);
	return open_place(*place);
}

dumpdir_place dumpdir_written(void)
{
	return written;
}

void dumpdir_wrote(dumpdir_place place)
{
	written = place;
	if (place == announced)
		return;
	char from[4200], to[4200];
	dumpdir_path(0, from, sizeof(from));
	dumpdir_path(place, to, sizeof(to));
	if (place)
		ht_log("%s is not writable for uid %u; dumps now go to %s",
		       from, place - 1, to);
	else
		ht_log("dumps go to %s again", to);
	announced = place;
}
