/* heaptrace's server thread: the control socket @heaptrace/<pid> in every
 * traced process, and the HTTP endpoint when HEAPTRACE_HTTP is set. */
#ifndef HEAPTRACE_SERVER_H
#define HEAPTRACE_SERVER_H

/* Starts the server thread. */
void server_start(void);

/* Fork hooks (lifecycle.h): the descriptor record is held across fork; the
 * child closes the parent's sockets, keeps none of its connections or its
 * HTTP port, and starts a server thread of its own. */
void server_prefork(void);
void server_postfork_parent(void);
void server_postfork_child(void);

#endif
