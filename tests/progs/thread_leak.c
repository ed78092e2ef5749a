/* Threads in every state heaptrace distinguishes: exited but never joined
 * (the leak), joined, detached, and still running at dump time. The dump
 * is taken with heaptrace_dump() while the running ones wait on a pipe.
 * argv[1] is the number of leaked threads. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int gate[2];

void *quick_exit_thread(void *arg)
{
	return arg;
}

void *waiting_thread(void *arg)
{
	char c;
	while (read(gate[0], &c, 1) < 0)
		;
	return arg;
}

void spawn_leaky(int n)
{
	pthread_t t;
	for (int i = 0; i < n; i++)
		pthread_create(&t, NULL, quick_exit_thread, NULL);
}

void spawn_joined(int n)
{
	for (int i = 0; i < n; i++) {
		pthread_t t;
		pthread_create(&t, NULL, quick_exit_thread, NULL);
		pthread_join(t, NULL);
	}
}

void spawn_detached(int n)
{
	for (int i = 0; i < n; i++) {
		pthread_t t;
		pthread_create(&t, NULL, quick_exit_thread, NULL);
		pthread_detach(t);
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < n; i++) {
		pthread_t t;
		pthread_create(&t, &attr, quick_exit_thread, NULL);
	}
	pthread_attr_destroy(&attr);
}

void spawn_waiting(pthread_t *t, int n)
{
	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, waiting_thread, NULL);
}

int main(int argc, char **argv)
{
	int leaked = argc > 1 ? atoi(argv[1]) : 5;
	pthread_t waiting[3];
	if (pipe(gate))
		return 1;
	spawn_leaky(leaked);
	spawn_joined(4);
	spawn_detached(3);
	spawn_waiting(waiting, 3);
	usleep(300000); /* let the short-lived ones finish */
	int (*dump)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "heaptrace_dump");
	printf("dump: %d\n", dump ? dump() : -1);
	if (write(gate[1], "xxx", 3) != 3)
		return 1;
	for (int i = 0; i < 3; i++)
		pthread_join(waiting[i], NULL);
	return 0;
}
