/* The control socket's line protocol (docs/format.md, "The control
 * socket"): `status` and `dump`, answered on @heaptrace/<pid> to the
 * process's own uid and root. */
#ifndef HEAPTRACE_CONTROL_H
#define HEAPTRACE_CONTROL_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* The abstract address of pid's control socket, and its length. */
socklen_t control_address(pid_t pid, struct sockaddr_un *a);

/* 1 when the peer of the socket fd is the process's effective uid now,
 * or root; otherwise tells the peer why not and returns 0. */
int control_admit(int fd);

/* Answers one request line (without its newline) on fd; http is the
 * address HTTP is served on, "" when it is not. */
void control_answer(int fd, const char *line, size_t len, const char *http);

/* Says "error <why>" to the peer. */
void control_refuse(int fd, const char *why);

#endif
