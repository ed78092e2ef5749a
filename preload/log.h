/* Messages to stderr. The tracer must not allocate through the traced
 * malloc nor use stdio (which may lock or allocate at awkward moments), so
 * messages are formatted into a stack buffer and written with write(2). */
#ifndef HEAPTRACE_LOG_H
#define HEAPTRACE_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* printf-like, supporting %s %d %u %x %o (with l, ll, z and a zero-padded
 * width) and %% only; one line,
 * "heaptrace: " prefixed and newline terminated. */
void ht_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* vsnprintf-like formatter with the same subset, for building names and
 * messages without libc's stdio; returns the length written. */
size_t ht_format(char *buf, size_t size, const char *fmt, va_list ap);
size_t ht_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
