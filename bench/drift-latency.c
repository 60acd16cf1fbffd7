/* SPDX-License-Identifier: MIT */
/*
 * Benchmark driver for the agent (not a test).
 *   drift-latency repair DIR NFILES EDITS [FIRST]  -- overwrite files
 *       DIR/fK.conf (K cycles through NFILES, from edit FIRST on) and
 *       time until the agent renames the repaired file into place
 *       (IN_MOVED_TO), printing p50/p90/p99/max ms.
 *   drift-latency apply PID FILE TEXT      -- send SIGUSR1 to PID and time
 *       until FILE holds TEXT (commit-to-applied after the trigger).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Wait for an IN_MOVED_TO of name in the watched directory; -1 on timeout. */
static int wait_moved(int ifd, const char *name, int timeout_ms)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	double end = now_ms() + timeout_ms;
	for (;;) {
		int left = (int)(end - now_ms());
		if (left <= 0)
			return -1;
		struct pollfd p = { ifd, POLLIN, 0 };
		if (poll(&p, 1, left) <= 0)
			continue;
		ssize_t n = read(ifd, buf, sizeof(buf));
		for (char *q = buf; n > 0 && q < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)q;
			q += sizeof(*ev) + ev->len;
			if ((ev->mask & IN_MOVED_TO) && ev->len && !strcmp(ev->name, name))
				return 0;
		}
	}
}

static int repair(const char *dir, int nfiles, int edits, int first)
{
	int ifd = inotify_init1(IN_CLOEXEC);
	if (ifd < 0 || inotify_add_watch(ifd, dir, IN_MOVED_TO) < 0) {
		perror("inotify");
		return 1;
	}
	double *lat = calloc((size_t)edits, sizeof(double));
	int lost = 0;
	for (int i = 0; i < edits; i++) {
		char name[64], path[4096];
		snprintf(name, sizeof(name), "f%d.conf", ((first + i) * 7919) % nfiles);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		int fd = open(path, O_WRONLY | O_TRUNC);
		if (fd < 0) {
			perror(path);
			return 1;
		}
		double t0 = now_ms();
		if (write(fd, "drift\n", 6) != 6)
			perror("write");
		close(fd);
		if (wait_moved(ifd, name, 2000) < 0) {
			lost++;
			lat[i] = 2000;
		} else {
			lat[i] = now_ms() - t0;
		}
		usleep(20000);	/* stay clear of the agent's flap detection */
	}
	qsort(lat, (size_t)edits, sizeof(double), cmp);
	printf("edits %d, not repaired within 2 s: %d\n", edits, lost);
	printf("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", lat[edits / 2],
	       lat[edits * 9 / 10], lat[edits * 99 / 100], lat[edits - 1]);
	return 0;
}

static int apply(int pid, const char *file, const char *text)
{
	char buf[4096];
	double t0 = now_ms();
	if (kill(pid, SIGUSR1) < 0) {
		perror("kill");
		return 1;
	}
	while (now_ms() - t0 < 30000) {
		int fd = open(file, O_RDONLY);
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n >= 0) {
				buf[n] = '\0';
				if (!strcmp(buf, text)) {
					printf("commit-to-applied after the trigger: %.2f ms\n", now_ms() - t0);
					return 0;
				}
			}
		}
		usleep(200);
	}
	printf("not applied within 30 s\n");
	return 1;
}

int main(int argc, char **argv)
{
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "repair"))
		return repair(argv[2], atoi(argv[3]), atoi(argv[4]), argc == 6 ? atoi(argv[5]) : 0);
	if (argc == 5 && !strcmp(argv[1], "apply"))
		return apply(atoi(argv[2]), argv[3], argv[4]);
	fprintf(stderr, "usage: drift-latency repair DIR NFILES EDITS | apply PID FILE TEXT\n");
	return 64;
}
