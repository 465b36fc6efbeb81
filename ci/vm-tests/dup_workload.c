// SPDX-License-Identifier: GPL-2.0
/*
 * A workload with a known share of duplicate memory, for the demo and benchmarks.
 *
 *   dup_workload PROCS MIB DUP_PERCENT SECONDS
 *
 * Starts PROCS processes, each with MIB MiB of private anonymous memory: DUP_PERCENT of
 * its pages hold one of 16 patterns shared by all processes, the rest hold content unique
 * to the page. They stay alive SECONDS seconds, then check every byte is still what they
 * wrote and exit with status 1 on any difference.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL

static void fill(uint64_t *page, size_t index, int pid_salt, int dup_percent)
{
	size_t i;
	int dup = (int)((index * 2654435761UL) % 100) < dup_percent;
	uint64_t v = dup ? 0x0123456789abcdefULL * (index % 16 + 1)
			 : ((uint64_t)pid_salt << 40) ^ (index * 0x9e3779b97f4a7c15ULL);

	for (i = 0; i < PAGE / 8; i++)
		page[i] = v + i;
}

static int child(size_t mib, int dup_percent, int seconds, int salt)
{
	size_t pages = mib * 256, i;
	uint64_t want[PAGE / 8];
	char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 2;
	madvise(p, pages * PAGE, MADV_NOHUGEPAGE);
	for (i = 0; i < pages; i++)
		fill((uint64_t *)(p + i * PAGE), i, salt, dup_percent);
	sleep((unsigned int)seconds);
	for (i = 0; i < pages; i++) {
		fill(want, i, salt, dup_percent);
		if (memcmp(want, p + i * PAGE, PAGE)) {
			fprintf(stderr, "process %d: page %zu changed\n", salt, i);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int procs, dup, seconds, i, status, bad = 0;
	size_t mib;

	if (argc != 5)
		return fprintf(stderr, "usage: dup_workload PROCS MIB DUP_PERCENT SECONDS\n"), 2;
	procs = atoi(argv[1]);
	mib = (size_t)atol(argv[2]);
	dup = atoi(argv[3]);
	seconds = atoi(argv[4]);
	for (i = 0; i < procs; i++)
		if (fork() == 0)
			_exit(child(mib, dup, seconds, i + 1));
	while (wait(&status) > 0)
		bad |= !WIFEXITED(status) || WEXITSTATUS(status);
	printf("dup_workload: %d processes x %zu MiB, %d%% duplicate: contents %s\n", procs, mib,
	       dup, bad ? "CHANGED" : "intact");
	return bad;
}
