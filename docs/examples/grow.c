/* A small service-like program for `make demo`: it handles "requests" in a
 * loop, each allocating a buffer that is freed and a session record that
 * is, by mistake, kept. Runs for argv[1] seconds (default 5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct session {
	char user[64];
	char *history;
};

static struct session **sessions;
static size_t n_sessions;

/* The leak: every request remembers a session nobody ever frees. */
static void remember_session(int id)
{
	struct session *s = malloc(sizeof(*s));
	snprintf(s->user, sizeof(s->user), "user-%d", id);
	s->history = malloc(2048);
	sessions = realloc(sessions, (n_sessions + 1) * sizeof(*sessions));
	sessions[n_sessions++] = s;
}

/* Churn: a scratch buffer per request, freed at once. */
static void render_reply(int id)
{
	char *buf = malloc(16384);
	snprintf(buf, 16384, "reply %d", id);
	if (strlen(buf) == 0)
		abort();
	free(buf);
}

static void handle_request(int id)
{
	render_reply(id);
	remember_session(id);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5;
	struct timespec start, now, pause = {0, 200000};
	clock_gettime(CLOCK_MONOTONIC, &start);
	int id = 0;
	do {
		handle_request(id++);
		nanosleep(&pause, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((double)(now.tv_sec - start.tv_sec) +
		     (double)(now.tv_nsec - start.tv_nsec) / 1e9 <
		 seconds);
	printf("handled %d requests\n", id);
	return 0;
}
