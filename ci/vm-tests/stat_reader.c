// SPDX-License-Identifier: GPL-2.0
/*
 * Whether an unprivileged user reading uksm's statistics in a loop slows other processes'
 * mmap and page faults (t_sysfs_fuzz.sh).
 *
 *   stat_reader    (as root, uksm loaded)
 *
 * A workload of mmap/munmap churn (500 VMAs, each passing uksm's hooks) and 1024 page
 * faults is timed three times each in three conditions: alone; beside a process of uid 1000 reading
 * a sysfs file of the kernel's in a loop (the control: it costs the same CPU and system
 * calls); and beside a process of uid 1000 reading every file of /sys/kernel/mm/uksm/
 * and /sys/kernel/mm/ksm/ in a loop. The medians are printed; the statistics reader
 * may cost the workload at most 50 % more than the control reader (the two readers make
 * different system calls; with both VMs of ci/test.sh on two cores the ratio was seen
 * between 0.6 and 1.2).
 */
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include "vmtest.h"

static double workload(void)
{
	double t0 = now_s();
	size_t i, len = 4 << 20;
	char *p;

	for (i = 0; i < 500; i++) {
		p = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
		if (p == MAP_FAILED)
			exit(2);
		p[0] = 1;
		munmap(p, 64 << 10);
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(2);
	madvise(p, len, MADV_NOHUGEPAGE);	/* faults of small pages: 1024 of them */
	for (i = 0; i < len; i += PAGE)
		p[i] = 1;
	munmap(p, len);
	return now_s() - t0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median_of_3(const char *what)
{
	double t[3];
	int i;

	for (i = 0; i < 3; i++)
		t[i] = workload();
	qsort(t, 3, sizeof(t[0]), cmp_d);
	printf("%s: %.3f %.3f %.3f s\n", what, t[0], t[1], t[2]);
	return t[1];
}

static void read_all(const char *dir)
{
	char path[512], buf[4096];
	struct dirent *d;
	DIR *dp = opendir(dir);
	int fd;

	while (dp && (d = readdir(dp))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		fd = open(path, O_RDONLY);
		if (fd >= 0) {
			if (read(fd, buf, sizeof(buf)) < 0)
				buf[0] = 0;
			close(fd);
		}
	}
	if (dp)
		closedir(dp);
}

static pid_t reader(int stats)
{
	pid_t pid = fork();
	char buf[256];
	int fd;

	if (pid)
		return pid;
	if (setgid(1000) || setuid(1000))
		_exit(2);
	for (;;) {
		if (stats) {
			read_all("/sys/kernel/mm/uksm");
			read_all("/sys/kernel/mm/ksm");
		} else {
			fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY);
			if (fd >= 0) {
				if (read(fd, buf, sizeof(buf)) < 0)
					buf[0] = 0;
				close(fd);
			}
		}
	}
}

static double beside(int stats)
{
	pid_t pid = reader(stats);
	double t;

	usleep(200000);
	t = median_of_3(stats ? "beside a reader of uksm's statistics" : "beside a reader of a kernel sysfs file");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return t;
}

int main(void)
{
	double alone, control, stats;

	setvbuf(stdout, NULL, _IONBF, 0);
	alone = median_of_3("alone");
	control = beside(0);
	stats = beside(1);
	printf("workload (500 mmap/munmap, 1024 page faults), median of 3: alone %.3f s, beside a reader of a kernel sysfs file %.3f s, beside a reader of uksm's statistics %.3f s (x%.2f of the control)\n",
	       alone, control, stats, stats / control);
	CHECK(stats <= 1.5 * control, "reading uksm's statistics slowed the workload by %.0f %%",
	      (stats / control - 1) * 100);
	return failures ? 1 : 0;
}
