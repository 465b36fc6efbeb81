// SPDX-License-Identifier: GPL-2.0
/*
 * VMA churn and registry accuracy check for the uksm VM tests.
 *
 *   vma_churn run SECONDS WORKERS   start WORKERS processes (own process group, written
 *                                   to /tmp/churn.pgid) that fork, exec, exit, mmap,
 *                                   munmap, mremap, mprotect, brk and spawn threads in
 *                                   loops, until SECONDS have passed
 *   vma_churn check ROUNDS          ROUNDS times, one second apart: stop the churn group,
 *                                   compare /sys/kernel/mm/uksm/tracked_{vmas,pages} with
 *                                   the eligible VMAs in every /proc/PID/smaps, continue
 *   vma_churn count                 print the eligible VMAs and pages seen in /proc
 *
 * Eligible (docs/vma-registry.md): private, anonymous (no file but /dev/zero, not
 * [vsyscall]) and none of the VmFlags sh ms pf io de ht mm dp gd gu.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static unsigned int seed;

static unsigned int rnd(unsigned int n)
{
	return (unsigned int)rand_r(&seed) % n;
}

static void *thread_body(void *arg)
{
	char *p = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p != MAP_FAILED) {
		memset(p, 1, 8 * PAGE);
		munmap(p, 8 * PAGE);
	}
	return arg;
}

static void churn_step(void)
{
	size_t pages = 1 + rnd(64);
	char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd;

	if (p == MAP_FAILED)
		return;
	memset(p, (int)rnd(3), pages * PAGE);
	switch (rnd(12)) {
	case 0: /* split by unmapping a hole */
		if (pages > 2)
			munmap(p + PAGE, PAGE);
		break;
	case 1: /* split and merge back through mprotect */
		if (pages > 2) {
			mprotect(p + PAGE, PAGE, PROT_READ);
			if (rnd(2))
				mprotect(p + PAGE, PAGE, PROT_READ | PROT_WRITE);
		}
		break;
	case 2: { /* grow, possibly moving */
		char *q = mremap(p, pages * PAGE, 2 * pages * PAGE, MREMAP_MAYMOVE);

		if (q != MAP_FAILED) {
			p = q;
			pages *= 2;
		}
		break;
	}
	case 3: /* shrink in place */
		if (pages > 1 && mremap(p, pages * PAGE, PAGE, 0) != MAP_FAILED)
			pages = 1;
		break;
	case 4: { /* move to a fixed spot */
		char *dst = mmap(NULL, pages * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (dst != MAP_FAILED) {
			char *q = mremap(p, pages * PAGE, pages * PAGE,
					 MREMAP_MAYMOVE | MREMAP_FIXED, dst);
			if (q != MAP_FAILED)
				p = q;
			else
				munmap(dst, pages * PAGE);
		}
		break;
	}
	case 5: /* brk up and down */
		if (sbrk((intptr_t)(pages * PAGE)) != (void *)-1 && rnd(2))
			sbrk(-(intptr_t)(pages * PAGE));
		break;
	case 6: /* ineligible neighbours: shared anonymous, private file, /dev/zero */
		munmap(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0), PAGE);
		fd = open(rnd(2) ? "/dev/zero" : "/bin/busybox", O_RDONLY);
		if (fd >= 0) {
			void *f = mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);

			close(fd);
			if (f != MAP_FAILED && rnd(2))
				munmap(f, 4 * PAGE);
		}
		break;
	case 7: { /* fork: the child exits, execs or churns a little */
		pid_t c = fork();

		if (c == 0) {
			if (rnd(2))
				execl("/bin/busybox", "true", (char *)NULL);
			churn_step();
			_exit(0);
		}
		if (c > 0)
			waitpid(c, NULL, 0);
		break;
	}
	case 8: { /* a thread with its own stack mapping */
		pthread_t t;

		if (pthread_create(&t, NULL, thread_body, NULL) == 0)
			pthread_join(t, NULL);
		break;
	}
	case 9: /* MADV_DONTNEED keeps the VMA */
		madvise(p, pages * PAGE, MADV_DONTNEED);
		break;
	default:
		break;
	}
	/* Keep a few mappings alive for a while so there is something to count. */
	if (rnd(4))
		munmap(p, pages * PAGE);
}

static int run(int seconds, int workers)
{
	time_t end = time(NULL) + seconds;
	FILE *f;
	int i;

	setpgid(0, 0);
	f = fopen("/tmp/churn.pgid", "w");
	if (!f)
		return 1;
	fprintf(f, "%d\n", getpgrp());
	fclose(f);
	for (i = 0; i < workers; i++) {
		if (fork() == 0) {
			seed = (unsigned int)getpid();
			/* Workers live a few hundred steps, then are replaced: exits and new mms. */
			while (time(NULL) < end) {
				pid_t c = fork();

				if (c == 0) {
					int n = 100 + (int)rnd(400);

					while (n-- && time(NULL) < end)
						churn_step();
					_exit(0);
				}
				if (c < 0 || waitpid(c, NULL, 0) < 0)
					_exit(1);
			}
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	return 0;
}

struct count {
	unsigned long vmas, pages;
};

static int has_flag(const char *flags, const char *f)
{
	const char *p = flags;

	while ((p = strstr(p, f))) {
		if ((p == flags || p[-1] == ' ') && (p[2] == ' ' || p[2] == '\n' || !p[2]))
			return 1;
		p += 2;
	}
	return 0;
}

static void count_pid(const char *pid, struct count *c)
{
	static const char *excluded[] = { "sh", "ms", "pf", "io", "de", "ht", "mm", "dp", "gd",
					  "gu" };
	char path[300], line[512];
	unsigned long start = 0, end = 0;
	int candidate = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/smaps", pid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char perms[8], dev[16], name[256] = "";
		unsigned long s, e, off, inode;

		/* sscanf stores fields before it fails: parse into temporaries. */
		if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %255s", &s, &e, perms, &off, dev,
			   &inode, name) >= 6) {
			start = s;
			end = e;
			candidate = perms[3] == 'p' &&
				    ((inode == 0 && strcmp(name, "[vsyscall]") != 0) ||
				     strcmp(name, "/dev/zero") == 0);
		} else if (!strncmp(line, "VmFlags:", 8) && candidate) {
			size_t i;

			for (i = 0; i < sizeof(excluded) / sizeof(excluded[0]); i++)
				if (has_flag(line + 8, excluded[i]))
					candidate = 0;
			if (candidate) {
				c->vmas++;
				c->pages += (end - start) / PAGE;
			}
			candidate = 0;
		}
	}
	fclose(f);
}

static struct count count_all(void)
{
	struct count c = { 0, 0 };
	struct dirent *d;
	DIR *dir = opendir("/proc");

	while (dir && (d = readdir(dir)))
		if (isdigit((unsigned char)d->d_name[0]))
			count_pid(d->d_name, &c);
	if (dir)
		closedir(dir);
	return c;
}

static unsigned long read_ul(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);

	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0) {
		fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
		exit(2);
	}
	close(fd);
	return strtoul(buf, NULL, 10);
}

/* Waits until n more scan passes of uksmd have completed, at most secs seconds. */
static void wait_passes(unsigned long n, int secs)
{
	unsigned long target = read_ul("/sys/kernel/mm/uksm/full_scans") + n;
	int i;

	for (i = 0; i < secs * 20; i++) {
		if (read_ul("/sys/kernel/mm/uksm/full_scans") >= target)
			return;
		usleep(50000);
	}
}

static struct count tracked(void)
{
	struct count c = { read_ul("/sys/kernel/mm/uksm/tracked_vmas"),
			   read_ul("/sys/kernel/mm/uksm/tracked_pages") };
	return c;
}

/* Stops every process of the group; true once all are stopped (or gone). */
static int group_stopped(pid_t pgid)
{
	struct dirent *d;
	DIR *dir = opendir("/proc");
	int all = 1;

	while (dir && (d = readdir(dir))) {
		char path[300], buf[512], *p;
		int fd, n, pg;
		char state;

		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", d->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = (int)read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 2, "%c %*d %d", &state, &pg) != 2)
			continue;
		if (pg == pgid && state != 'T' && state != 'Z' && state != 'X')
			all = 0;
	}
	if (dir)
		closedir(dir);
	return all;
}

static int check(int rounds)
{
	FILE *f = fopen("/tmp/churn.pgid", "r");
	int pgid = 0, r, failures = 0;

	if (!f || fscanf(f, "%d", &pgid) != 1 || pgid <= 1) {
		fprintf(stderr, "no churn running\n");
		return 2;
	}
	fclose(f);
	for (r = 0; r < rounds; r++) {
		struct count a, seen, b;
		int tries, ok = 0;

		sleep(1);
		for (tries = 0; tries < 500 && !group_stopped(pgid); tries++) {
			kill(-pgid, SIGSTOP);
			usleep(10000);
		}
		/*
		 * Our own allocations (stdio, opendir) settle after the first pass;
		 * tracked_pages is counted by each complete pass, so wait for one that
		 * started after everything stopped.
		 */
		for (tries = 0; tries < 20 && !ok; tries++) {
			wait_passes(2, 60);
			a = tracked();
			seen = count_all();
			b = tracked();
			ok = a.vmas == b.vmas && a.pages == b.pages && a.vmas == seen.vmas &&
			     a.pages == seen.pages;
			if (!ok)
				usleep(50000);
		}
		printf("round %d: tracked %lu vmas %lu pages, /proc shows %lu vmas %lu pages: %s\n",
		       r, a.vmas, a.pages, seen.vmas, seen.pages, ok ? "equal" : "DIFFERENT");
		failures += !ok;
		kill(-pgid, SIGCONT);
	}
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "run"))
		return run(atoi(argv[2]), atoi(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "check"))
		return check(atoi(argv[2]));
	if (argc == 2 && !strcmp(argv[1], "count")) {
		struct count c = count_all();

		printf("%lu vmas %lu pages\n", c.vmas, c.pages);
		return 0;
	}
	fprintf(stderr, "usage: vma_churn run SECONDS WORKERS | check ROUNDS | count\n");
	return 2;
}
