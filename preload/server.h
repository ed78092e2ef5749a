/* heaptrace's server thread: the control socket @heaptrace/<pid> in every
 * traced process, and the HTTP endpoint when HEAPTRACE_HTTP is set. */
#ifndef HEAPTRACE_SERVER_H
#define HEAPTRACE_SERVER_H

#include <stddef.h>

/* Starts the server thread. */
void server_start(void);

/* Fork hooks (lifecycle.h): the descriptor record is held across fork; the
 * child closes the parent's sockets, keeps none of its connections or its
 * HTTP port, and starts a server thread of its own. */
void server_prefork(void);
void server_postfork_parent(void);
void server_postfork_child(void);

/* The address HTTP is served on now ("127.0.0.1:6060"), or "" when it is
 * not. On the server thread only (the control socket reports it). */
const char *server_http_address(void);

/* The server's descriptors, recorded so that a fork or a program that
 * closes every descriptor never makes it touch one of the program's:
 * a socket made and recorded (-1 and errno on failure), whether fd is
 * still the one recorded, and closing it (only if it is). */
int server_socket(int domain, int type);
int server_fd_ours(int fd);
void server_close(int fd);

#endif
