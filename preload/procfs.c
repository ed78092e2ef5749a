/* See procfs.h. */
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "outbuf.h"

size_t proc_read(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	if (fd < 0) {
		buf[0] = '\0';
		return 0;
	}
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return len;
}

uint64_t proc_rss_bytes(void)
{
	char buf[128];
	proc_read("/proc/self/statm", buf, sizeof(buf));
	const char *p = strchr(buf, ' ');
	uint64_t pages = 0;
	for (p = p ? p + 1 : buf; *p >= '0' && *p <= '9'; p++)
		pages = pages * 10 + (uint64_t)(*p - '0');
	return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

void proc_copy(struct outbuf *o, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[16384];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		out_bytes(o, buf, (size_t)n);
	}
	close(fd);
}
