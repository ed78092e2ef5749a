/* The load for `make demo`: one loopback connection to the collector,
 * RATE reports a second for SECONDS seconds, each answered before the
 * next is sent. Bounded in count and time, and it stops by itself.
 *
 * usage: collector_client PORT RATE SECONDS */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: collector_client PORT RATE SECONDS\n");
		return 2;
	}
	int rate = atoi(argv[2]);
	double seconds = atof(argv[3]);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons((uint16_t)atoi(argv[1]))};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int tries = 0; connect(fd, (struct sockaddr *)&addr, sizeof(addr));
	     tries++) {
		if (tries == 50) {
			perror("collector_client: connect");
			return 1;
		}
		usleep(100000);
	}
	double start = now();
	long sent = 0;
	while (now() - start < seconds && rate > 0) {
		char line[128], reply[8];
		int n = snprintf(line, sizeof(line), "temperature=%ld sensor=%ld\n",
				 sent % 40, sent % 7);
		if (write(fd, line, (size_t)n) != n || read(fd, reply, 3) != 3)
			break;
		sent++;
		double due = start + (double)sent / rate;
		double wait = due - now();
		if (wait > 0) {
			struct timespec ts = {(time_t)wait,
					      (long)((wait - (double)(time_t)wait) * 1e9)};
			nanosleep(&ts, NULL);
		}
	}
	printf("sent %ld reports in %.1f s\n", sent, now() - start);
	close(fd);
	return 0;
}
