/* The server thread: one poll loop, with every signal blocked and the
 * guard set, serves the control socket (control.c) and, with
 * HEAPTRACE_HTTP, the HTTP endpoint (http.c). Nothing here runs on a
 * program thread; everything it holds is the tracer's own memory, mapped
 * once when the thread starts: a fixed number of connection slots with
 * fixed buffers, so hostile clients can cost a bounded amount.
 *
 * Limits: 16 HTTP and 4 control connections at a time, further ones are
 * answered "busy" and closed at once; a request must arrive whole within
 * 10 s (HTTP) or 5 s (control), else the connection is closed.
 *
 * Descriptors the program may take away: daemons close every descriptor
 * at start, and a closed number is soon reused by the program. Every
 * descriptor the server holds is recorded with its inode, checked before
 * each use and once a second: one that is no longer ours is forgotten,
 * never touched again (a listener is made anew), so the server never
 * reads, accepts on or closes a descriptor of the program's.
 *
 * fork: the child inherits the server's descriptors but not its thread.
 * Creating, recording and closing a descriptor happen under fd_lock, which
 * the prepare hook takes, so the child's record is exact; the child closes
 * what is still ours (the parent's HTTP port is not served from the
 * child while the parent lives), and starts its own thread with its own
 * @heaptrace/<pid>. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "control.h"
#include "http.h"
#include "log.h"
#include "ownthread.h"
#include "real.h"
#include "thread_state.h"

#define MAX_HTTP 16
#define MAX_CONTROL 4
#define MAX_CONN (MAX_HTTP + MAX_CONTROL)
#define MAX_FDS (MAX_CONN + 8)
#define HTTP_REQUEST_MS 10000
#define CONTROL_REQUEST_MS 5000
#define CHECK_MS 1000
#define REBIND_MS 10000
#define HTTP_BUF (HTTP_HEAD_MAX + HTTP_BODY_MAX)
#define CONTROL_BUF 256
/* Bytes of a slot's buffer kept resident after its connection: a large
 * POST is given back to the system when it is done. */
#define KEEP_RESIDENT (64 << 10)

struct owned {
	int fd; /* -1: free */
	dev_t dev;
	ino_t ino;
};

struct conn {
	int fd; /* -1: free */
	int control;
	int parked; /* an HTTP answer waits for its time (?seconds=N) */
	uint64_t deadline_ms;
	size_t len, cap;
	char *buf;
	struct http_progress req;
	struct http_parked wait;
};

static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct owned owned[MAX_FDS];
static struct conn conns[MAX_CONN];
static int control_fd = -1, http_fd = -1;
static char *buffers;   /* every slot's buffer, one mapping */
static char http_where[64];
static int http_wanted; /* configured, token usable, the port not found
			  * taken: keep a listener (remade if the program
			  * closes it) */
static int forked;      /* a forked child: the parent's port is not ours */
/* A forked child of a process that serves HTTP takes the port over when
 * that process exits first: a daemon's fork that lets the parent exit
 * (nginx, redis) keeps its endpoint. */
static int adopt_port;
/* The forking process, taken before fork: the child cannot ask getppid()
 * for it, since a parent that exits at once may be gone (and the child
 * reparented) before the child runs its handler. */
static pid_t parent_at_fork;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Under fd_lock: records a descriptor just made, or closes it and
 * returns -1 when it cannot be recorded. */
static int record(int fd)
{
	struct stat st;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0)
		for (int i = 0; i < MAX_FDS; i++)
			if (owned[i].fd < 0) {
				owned[i] = (struct owned){fd, st.st_dev, st.st_ino};
				return fd;
			}
	close(fd);
	errno = EMFILE;
	return -1;
}

static struct owned *find(int fd)
{
	for (int i = 0; i < MAX_FDS; i++)
		if (owned[i].fd == fd && fd >= 0)
			return &owned[i];
	return NULL;
}

/* Under fd_lock: fd is recorded and still the socket we made. */
static int still_ours_locked(int fd)
{
	struct owned *o = find(fd);
	struct stat st;
	return o && fstat(fd, &st) == 0 && st.st_dev == o->dev &&
	       st.st_ino == o->ino;
}

static int server_fd_ours(int fd)
{
	pthread_mutex_lock(&fd_lock);
	int ours = still_ours_locked(fd);
	pthread_mutex_unlock(&fd_lock);
	return ours;
}

/* A socket made and recorded; -1 and errno on failure. */
static int server_socket(int domain, int type)
{
	pthread_mutex_lock(&fd_lock);
	int fd = record(socket(domain, type | SOCK_CLOEXEC, 0));
	pthread_mutex_unlock(&fd_lock);
	return fd;
}

/* Closes fd if it is still ours; forgets it either way. */
static void server_close(int fd)
{
	pthread_mutex_lock(&fd_lock);
	struct owned *o = find(fd);
	if (o) {
		if (still_ours_locked(fd))
			close(fd);
		o->fd = -1;
	}
	pthread_mutex_unlock(&fd_lock);
}

static int accept_one(int lfd)
{
	pthread_mutex_lock(&fd_lock);
	int fd = still_ours_locked(lfd)
		     ? record(accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC))
		     : -1;
	pthread_mutex_unlock(&fd_lock);
	return fd;
}

static void addr_text(const struct sockaddr_storage *sa, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port;
	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		ht_snprintf(buf, size, "[%s]:%u", host, port);
	} else {
		const struct sockaddr_in *a = (const void *)sa;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		ht_snprintf(buf, size, "%s:%u", host, port);
	}
}

static int listen_control(void)
{
	struct sockaddr_un a;
	socklen_t len = control_address(getpid(), &a);
	int fd = server_socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, len) || listen(fd, 8)) {
		int err = errno;
		server_close(fd);
		return -err;
	}
	return fd;
}

/* The port cannot be had: said once, and not tried again. Not said by
 * a process that inherited the address from a traced ancestor (an exec'd
 * descendant: exec_env.c; a forked one taking over), whose family most
 * likely holds it. */
static void http_busy(const char *wanted, int err)
{
	http_wanted = 0;
	if (ht_config.http_inherited)
		return;
	ht_log("cannot serve HTTP on %s (%s); the program runs on without it, "
	       "dumps to files and the control socket still work",
	       wanted, strerror(err));
}

static void listen_http(void)
{
	const struct sockaddr_storage *want = &ht_config.http_addr;
	char wanted[64];
	addr_text(want, wanted, sizeof(wanted));
	int fd = server_socket(want->ss_family, SOCK_STREAM | SOCK_NONBLOCK);
	if (fd < 0) {
		http_busy(wanted, errno);
		return;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)want, ht_config.http_addr_len) ||
	    listen(fd, 64)) {
		int err = errno;
		server_close(fd);
		http_busy(wanted, err);
		return;
	}
	struct sockaddr_storage got;
	socklen_t len = sizeof(got);
	if (getsockname(fd, (struct sockaddr *)&got, &len) == 0)
		addr_text(&got, http_where, sizeof(http_where));
	else
		ht_snprintf(http_where, sizeof(http_where), "%s", wanted);
	http_fd = fd;
	if (ht_config.http_public)
		ht_log("serving HTTP on %s, which is reachable from the network%s",
		       http_where,
		       ht_config.http_token_file[0]
			   ? " (a bearer token is required)"
			   : ": anyone who can connect can read the heap's "
			     "profiles; set HEAPTRACE_HTTP_TOKEN_FILE");
}

static struct conn *free_slot(int control)
{
	int from = control ? MAX_HTTP : 0, to = control ? MAX_CONN : MAX_HTTP;
	for (int i = from; i < to; i++)
		if (conns[i].fd < 0)
			return &conns[i];
	return NULL;
}

static void drop(struct conn *c)
{
	if (c->parked)
		http_drop_parked(&c->wait);
	c->parked = 0;
	server_close(c->fd);
	c->fd = -1;
	if (c->len > KEEP_RESIDENT)
		madvise(c->buf + KEEP_RESIDENT, c->cap - KEEP_RESIDENT,
			MADV_DONTNEED);
	c->len = 0;
}

static void accept_all(int lfd, int control)
{
	/* Bounded per wake-up, so one listener cannot starve the rest. */
	for (int i = 0; i < 64; i++) {
		int fd = accept_one(lfd);
		if (fd < 0)
			return;
		struct conn *c = free_slot(control);
		if (!c) {
			if (control)
				control_refuse(fd, "busy: too many control "
						   "connections");
			else
				http_reject(fd, 503);
			server_close(fd);
			continue;
		}
		c->fd = fd;
		c->control = control;
		c->len = 0;
		c->parked = 0;
		memset(&c->req, 0, sizeof(c->req));
		c->deadline_ms = now_ms() + (control ? CONTROL_REQUEST_MS
						     : HTTP_REQUEST_MS);
	}
}

static void on_control_bytes(struct conn *c)
{
	char *nl = memchr(c->buf, '\n', c->len);
	if (!nl && c->len < c->cap)
		return;
	/* The peer is judged once its request is read: closing on unread
	 * bytes would reset the connection before it reads why. */
	if (!nl)
		control_refuse(c->fd, "request too long");
	else if (control_admit(c->fd)) /* else it was told why */
		control_answer(c->fd, c->buf, (size_t)(nl - c->buf), http_where);
	drop(c);
}

static void on_http_bytes(struct conn *c)
{
	int status = http_parse(c->buf, c->len, &c->req);
	if (status == 0)
		return;
	if (status != 200)
		http_reject(c->fd, status);
	else if (http_answer(c->fd, &c->req.r, &c->wait)) {
		c->parked = 1;
		c->deadline_ms = c->wait.due_ms;
		return;
	}
	drop(c);
}

static void on_readable(struct conn *c, short revents)
{
	if (!server_fd_ours(c->fd)) { /* the program closed it */
		server_close(c->fd);
		c->fd = -1;
		c->parked = 0;
		return;
	}
	if (c->parked) { /* the client went away before its delta */
		if (revents & (POLLRDHUP | POLLHUP | POLLERR))
			drop(c);
		return;
	}
	ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(c);
		return;
	}
	c->len += (size_t)n;
	if (c->control)
		on_control_bytes(c);
	else
		on_http_bytes(c);
}

static void on_deadline(struct conn *c)
{
	if (c->parked && server_fd_ours(c->fd)) {
		http_answer_parked(c->fd, &c->wait);
		c->parked = 0;
	}
	drop(c); /* a request that did not arrive in time: closed */
}

/* Each time round the loop (at least once a second): listeners the
 * program took away are made anew at once; one that cannot be made is
 * tried again every REBIND_MS. */
static void check_listeners(uint64_t now, uint64_t *next_bind)
{
	if (control_fd >= 0 && !server_fd_ours(control_fd)) {
		server_close(control_fd);
		control_fd = -1;
	}
	if (http_fd >= 0 && !server_fd_ours(http_fd)) {
		server_close(http_fd);
		http_fd = -1;
	}
	if (adopt_port && getppid() != parent_at_fork) { /* the parent left */
		adopt_port = 0;
		/* read again: the parent may have forked before it read it */
		http_wanted = http_token_load() == 0;
		ht_config.http_inherited = 1;
		*next_bind = 0;
	}
	if (now < *next_bind || (control_fd >= 0 && (!http_wanted || http_fd >= 0)))
		return;
	if (control_fd < 0) {
		static int said;
		control_fd = listen_control();
		if (control_fd < 0 && !said++)
			ht_log("cannot make the control socket @heaptrace/%d "
			       "(%s); `heaptrace dump` falls back to the signal",
			       (int)getpid(), strerror(-control_fd));
	}
	if (http_wanted && http_fd < 0)
		listen_http();
	if (control_fd < 0 || (http_wanted && http_fd < 0))
		*next_bind = now + REBIND_MS;
}

static void serve(void)
{
	uint64_t next_bind = 0;
	for (;;) {
		uint64_t now = now_ms();
		check_listeners(now, &next_bind);
		struct pollfd pfd[2 + MAX_CONN];
		struct conn *who[2 + MAX_CONN];
		int n = 0;
		uint64_t wake = now + CHECK_MS;
		if (control_fd >= 0)
			pfd[n] = (struct pollfd){control_fd, POLLIN, 0}, who[n++] = NULL;
		if (http_fd >= 0)
			pfd[n] = (struct pollfd){http_fd, POLLIN, 0}, who[n++] = NULL;
		for (int i = 0; i < MAX_CONN; i++) {
			struct conn *c = &conns[i];
			if (c->fd < 0)
				continue;
			short ev = c->parked ? POLLRDHUP : POLLIN;
			pfd[n] = (struct pollfd){c->fd, ev, 0};
			who[n++] = c;
			if (c->deadline_ms < wake)
				wake = c->deadline_ms;
		}
		int timeout = wake > now ? (int)(wake - now) : 0;
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			return; /* cannot happen with valid arguments */
		for (int i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (who[i])
				on_readable(who[i], pfd[i].revents);
			else if (pfd[i].fd == control_fd || pfd[i].fd == http_fd)
				accept_all(pfd[i].fd, pfd[i].fd == control_fd);
		}
		now = now_ms();
		for (int i = 0; i < MAX_CONN; i++)
			if (conns[i].fd >= 0 && conns[i].deadline_ms <= now)
				on_deadline(&conns[i]);
	}
}

static void *server_main(void *arg)
{
	(void)arg;
	guard_enter(); /* for the thread's life */
	size_t size = (size_t)MAX_HTTP * HTTP_BUF + (size_t)MAX_CONTROL * CONTROL_BUF;
	if (!buffers && !(buffers = arena_map(size))) {
		ht_log("cannot map memory for the control socket; `heaptrace "
		       "dump` falls back to the signal");
		return NULL;
	}
	for (int i = 0; i < MAX_CONN; i++) {
		struct conn *c = &conns[i];
		c->fd = -1;
		c->cap = i < MAX_HTTP ? HTTP_BUF : CONTROL_BUF;
		c->buf = i < MAX_HTTP ? buffers + (size_t)i * HTTP_BUF
				      : buffers + (size_t)MAX_HTTP * HTTP_BUF +
					    (size_t)(i - MAX_HTTP) * CONTROL_BUF;
	}
	http_wanted = ht_config.http && !forked && http_token_load() == 0;
	serve();
	return NULL;
}

static void start_thread(void)
{
	if (ownthread_start(server_main, "heaptrace-srv"))
		ht_log("cannot start the server thread; `heaptrace dump` falls "
		       "back to the signal%s",
		       ht_config.http ? " and HTTP is not served" : "");
}

void server_prefork(void)
{
	pthread_mutex_lock(&fd_lock);
	parent_at_fork = getpid();
}

void server_postfork_parent(void)
{
	pthread_mutex_unlock(&fd_lock);
}

/* The child is single-threaded here, and fd_lock held since prepare:
 * the record is exact. */
void server_postfork_child(void)
{
	for (int i = 0; i < MAX_FDS; i++) {
		if (owned[i].fd >= 0 && still_ours_locked(owned[i].fd))
			close(owned[i].fd);
		owned[i].fd = -1;
	}
	for (int i = 0; i < MAX_CONN; i++) {
		if (conns[i].parked)
			http_drop_parked(&conns[i].wait);
		conns[i].parked = 0;
		conns[i].fd = -1;
		conns[i].len = 0;
	}
	http_where[0] = '\0';
	/* The parent serves the port, or is about to (a fork right at start
	 * can come before its server thread binds). */
	adopt_port = (ht_config.http && !forked) || adopt_port;
	forked = 1; /* the parent's port stays the parent's */
	control_fd = http_fd = -1;
	pthread_mutex_init(&fd_lock, NULL);
	start_thread();
}

void server_start(void)
{
	for (int i = 0; i < MAX_FDS; i++)
		owned[i].fd = -1;
	start_thread();
}
