/* A small data-collector service, the patient of `make demo`.
 *
 * It listens on loopback TCP; each line a client sends is a report. For
 * each report the handler clones the service's logger: the clone allocates
 * its buffers and starts a flush thread that wakes up every second until
 * the logger is closed. The bug: the handler never closes its clone, so
 * every request leaks the buffers and a thread that runs forever. Built
 * with -DFIXED, the handler closes it.
 *
 * usage: collector PORT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOG_BUFFER (16 * 1024)

struct logger {
	char name[64];
	char *buffer;
	size_t used;
	int closed;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t flusher;
};

/* Flushes once a second until the logger is closed; closing wakes it at
 * once, so that logger_close() does not wait out the second. */
static void *flush_loop(void *arg)
{
	struct logger *log = arg;
	pthread_mutex_lock(&log->lock);
	while (!log->closed) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&log->wake, &log->lock, &until);
		log->used = 0; /* "flushed" */
	}
	pthread_mutex_unlock(&log->lock);
	return NULL;
}

/* Like a per-request clone of a global logger: buffers plus a thread. */
static struct logger *logger_clone(const char *name)
{
	struct logger *log = calloc(1, sizeof(*log));
	snprintf(log->name, sizeof(log->name), "%s", name);
	log->buffer = malloc(LOG_BUFFER);
	pthread_mutex_init(&log->lock, NULL);
	pthread_cond_init(&log->wake, NULL);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_create(&log->flusher, &attr, flush_loop, log);
	pthread_attr_destroy(&attr);
	return log;
}

static void logger_close(struct logger *log)
{
	pthread_mutex_lock(&log->lock);
	log->closed = 1;
	pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->lock);
	pthread_join(log->flusher, NULL);
	pthread_cond_destroy(&log->wake);
	pthread_mutex_destroy(&log->lock);
	free(log->buffer);
	free(log);
}

static void logger_write(struct logger *log, const char *text)
{
	size_t n = strlen(text);
	pthread_mutex_lock(&log->lock);
	if (log->used + n < LOG_BUFFER) {
		memcpy(log->buffer + log->used, text, n);
		log->used += n;
	}
	pthread_mutex_unlock(&log->lock);
}

/* Parses one report into a record that lives only for the request. */
static char *parse_report(const char *line)
{
	char *record = malloc(strlen(line) + 256);
	sprintf(record, "report(%s)", line);
	return record;
}

static void handle_report(const char *line)
{
	struct logger *log = logger_clone("request");
	char *record = parse_report(line);
	logger_write(log, record);
	free(record);
#ifdef FIXED
	logger_close(log);
#else
	(void)logger_close; /* the bug: the clone is never closed */
#endif
}

static void serve_client(int fd)
{
	char buf[4096];
	size_t have = 0;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			return;
		have += (size_t)n;
		buf[have] = '\0';
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			handle_report(line);
			if (write(fd, "OK\n", 3) != 3)
				return;
			line = nl + 1;
		}
		have = strlen(line);
		memmove(buf, line, have);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: collector PORT\n");
		return 2;
	}
	int srv = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons((uint16_t)atoi(argv[1]))};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(srv, (struct sockaddr *)&addr, sizeof(addr)) || listen(srv, 16)) {
		perror("collector: bind");
		return 1;
	}
	printf("collector listening on 127.0.0.1:%s\n", argv[1]);
	fflush(stdout);
	for (;;) {
		int fd = accept(srv, NULL, NULL);
		if (fd < 0)
			continue;
		serve_client(fd);
		close(fd);
	}
}
