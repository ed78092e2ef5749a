/* See procmaps.h. The whole file is read first (the kernel makes each read
 * of it a consistent set of lines), then parsed in place. */
#include "procmaps.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"

static int grow_text(struct procmaps *pm)
{
	size_t cap = pm->text_cap ? 2 * pm->text_cap : 64 << 10;
	char *bigger = arena_map(cap);
	if (!bigger)
		return ENOMEM;
	if (pm->text) {
		memcpy(bigger, pm->text, pm->text_cap);
		arena_unmap(pm->text, pm->text_cap);
	}
	pm->text = bigger;
	pm->text_cap = cap;
	return 0;
}

static int add(struct procmaps *pm, const struct mapping *m)
{
	if (pm->n == pm->cap) {
		size_t cap = pm->cap ? 2 * pm->cap : 256;
		struct mapping *bigger = arena_map(cap * sizeof(*bigger));
		if (!bigger)
			return ENOMEM;
		if (pm->m) {
			memcpy(bigger, pm->m, pm->n * sizeof(*bigger));
			arena_unmap(pm->m, pm->cap * sizeof(*bigger));
		}
		pm->m = bigger;
		pm->cap = cap;
	}
	pm->m[pm->n++] = *m;
	return 0;
}

static uint64_t hex(char **p)
{
	uint64_t v = 0;
	for (;; (*p)++) {
		char c = **p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uint64_t)(c - 'a' + 10);
		else
			return v;
	}
}

static uint64_t dec(char **p)
{
	uint64_t v = 0;
	for (; **p >= '0' && **p <= '9'; (*p)++)
		v = v * 10 + (uint64_t)(**p - '0');
	return v;
}

/* One line: "start-end perms offset major:minor inode   path". */
static void parse_line(struct procmaps *pm, char *line)
{
	struct mapping m = {0};
	char *p = line;
	m.start = (uintptr_t)hex(&p);
	if (*p++ != '-')
		return;
	m.end = (uintptr_t)hex(&p);
	if (*p++ != ' ' || strlen(p) < 5 || p[2] != 'x')
		return;
	p += 5;
	m.offset = hex(&p);
	p++;
	uint64_t major = hex(&p);
	p++;
	m.dev = major << 32 | hex(&p);
	p++;
	m.inode = dec(&p);
	while (*p == ' ')
		p++;
	size_t len = strlen(p);
	static const char del[] = " (deleted)";
	if (len >= sizeof(del) - 1 && !strcmp(p + len - (sizeof(del) - 1), del)) {
		p[len - (sizeof(del) - 1)] = '\0';
		m.deleted = 1;
	}
	m.path = p;
	add(pm, &m);
}

int procmaps_read(struct procmaps *pm)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t len = 0;
	int err = 0;
	for (;;) {
		if (len + 4096 + 1 > pm->text_cap && (err = grow_text(pm)))
			break;
		ssize_t n = read(fd, pm->text + len, pm->text_cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = errno;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	pm->n = 0;
	if (err)
		return err;
	pm->text[len] = '\0';
	for (char *line = pm->text; *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		parse_line(pm, line);
		if (!nl)
			break;
		line = nl + 1;
	}
	return 0;
}

const struct mapping *procmaps_find(const struct procmaps *pm, uintptr_t addr)
{
	size_t lo = 0, hi = pm->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pm->m[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < pm->n && pm->m[lo].start <= addr ? &pm->m[lo] : NULL;
}
