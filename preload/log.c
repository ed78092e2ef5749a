/* A tiny formatter for the tracer's messages and file names. libc's stdio
 * may take locks held by an interrupted thread or allocate, and the tracer
 * speaks from inside malloc, from fork handlers and from its dump thread, so
 * it formats into caller-provided buffers and writes with one write(2). */
#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static size_t put_str(char *buf, size_t size, size_t pos, const char *s)
{
	if (!s)
		s = "(null)";
	for (; *s; s++, pos++)
		if (pos + 1 < size)
			buf[pos] = *s;
	return pos;
}

static size_t put_uint(char *buf, size_t size, size_t pos, unsigned long long v,
		       unsigned base, int width)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n < width && n < (int)sizeof(tmp))
		tmp[n++] = '0';
	while (n--)
		pos = (pos + 1 < size ? (buf[pos] = tmp[n], pos + 1) : pos + 1);
	return pos;
}

size_t ht_format(char *buf, size_t size, const char *fmt, va_list ap)
{
	size_t pos = 0;
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			if (pos + 1 < size)
				buf[pos] = *f;
			pos++;
			continue;
		}
		f++;
		int width = 0, longs = 0;
		while (*f >= '0' && *f <= '9')
			width = width * 10 + (*f++ - '0');
		while (*f == 'l' || *f == 'z')
			longs += (*f++ == 'z') ? 2 : 1;
		unsigned long long u;
		long long s;
		switch (*f) {
		case 's':
			pos = put_str(buf, size, pos, va_arg(ap, const char *));
			break;
		case 'd':
			s = longs ? va_arg(ap, long long) : va_arg(ap, int);
			if (s < 0) {
				pos = put_str(buf, size, pos, "-");
				u = 0ULL - (unsigned long long)s;
			} else {
				u = (unsigned long long)s;
			}
			pos = put_uint(buf, size, pos, u, 10, width);
			break;
		case 'u':
		case 'x':
		case 'o':
			u = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
			pos = put_uint(buf, size, pos, u,
				       *f == 'x' ? 16 : *f == 'o' ? 8 : 10, width);
			break;
		case '%':
			pos = put_str(buf, size, pos, "%");
			break;
		default:
			return pos; /* unsupported: stop rather than misread args */
		}
	}
	if (size)
		buf[pos < size ? pos : size - 1] = '\0';
	return pos;
}

size_t ht_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = ht_format(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void ht_log(const char *fmt, ...)
{
	int saved = errno;
	char line[512] = "heaptrace: ";
	size_t len = strlen(line);
	va_list ap;
	va_start(ap, fmt);
	len += ht_format(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t ignored = write(STDERR_FILENO, line, len);
	(void)ignored;
	errno = saved;
}
