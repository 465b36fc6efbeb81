// SPDX-License-Identifier: GPL-2.0
/*
 * Worst stall of a process that maps, faults and unmaps memory in a loop.
 *
 *   latency SECONDS READERS
 *
 * For SECONDS, repeats: mmap 64 pages, write one byte to each (64 page faults), munmap;
 * records how long each repetition took. With READERS > 0, that many unprivileged
 * processes (uid 65534) read every file of /sys/kernel/mm/uksm/ in a loop meanwhile.
 * Prints the number of repetitions, the median, the 99.9th percentile and the worst, in
 * microseconds, on one line starting with "latency:".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "vmtest.h"

static long long now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static void reader(void)
{
	char buf[4096], path[512];

	if (setgid(65534) || setuid(65534))
		_exit(2);
	for (;;) {
		DIR *d = opendir("/sys/kernel/mm/uksm");
		struct dirent *e;

		while (d && (e = readdir(d))) {
			int fd;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/sys/kernel/mm/uksm/%s", e->d_name);
			fd = open(path, O_RDONLY);
			if (fd >= 0) {
				if (read(fd, buf, sizeof(buf)) < 0)
					_exit(2);
				close(fd);
			}
		}
		if (d)
			closedir(d);
	}
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 10, readers = argc > 2 ? atoi(argv[2]) : 0;
	size_t n = 0, cap = 1 << 20, i;
	long long *t = malloc(cap * sizeof(*t)), end, t0;
	pid_t pids[16];
	int k;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (k = 0; k < readers && k < 16; k++)
		if ((pids[k] = fork()) == 0)
			reader();
	end = now_us() + seconds * 1000000LL;
	while ((t0 = now_us()) < end && n < cap) {
		char *p = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return 2;
		for (i = 0; i < 64; i++)
			p[i * PAGE] = 1;
		munmap(p, 64 * PAGE);
		t[n++] = now_us() - t0;
	}
	for (k = 0; k < readers && k < 16; k++) {
		kill(pids[k], SIGKILL);
		waitpid(pids[k], NULL, 0);
	}
	qsort(t, n, sizeof(*t), cmp_ll);
	printf("latency: %zu repetitions, median %lld us, 99.9%% %lld us, worst %lld us\n", n,
	       t[n / 2], t[n - 1 - n / 1000], t[n - 1]);
	return 0;
}
