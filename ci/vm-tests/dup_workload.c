// SPDX-License-Identifier: GPL-2.0
/*
 * A workload with a known share of duplicate memory, for the demo and benchmarks.
 *
 *   dup_workload PROCS MIB DUP_PERCENT SECONDS [ZERO_PERCENT]
 *
 * Starts PROCS processes, each with MIB MiB of private anonymous memory: DUP_PERCENT of
 * its pages hold one of 16 patterns shared by all processes, the rest hold content unique
 * to the page. With ZERO_PERCENT, that share of the pages is all zeros instead (written, so
 * present). Once every process has written its memory it prints
 *   filled: P pages, D duplicates
 * where D counts the pages whose content an earlier page already has (what merging can
 * free). The processes stay alive SECONDS seconds, then check every byte is still what
 * they wrote; the exit status is 1 on any difference. SIGTERM to the parent ends them all.
 * With DUP_WORKLOAD_PRCTL=1 in the environment each process opts in to built-in KSM with
 * prctl(PR_SET_MEMORY_MERGE) first (for benchmarks against KSM; uksm needs nothing).
 * The memory is in small pages (MADV_NOHUGEPAGE: the workload measures the scanner on
 * pages, not the splitting of huge ones), unless DUP_WORKLOAD_THP=1 asks for huge pages
 * (MADV_HUGEPAGE, 2 MiB-aligned).
 *
 * Two variants for benchmarks, by environment:
 * - DUP_WORKLOAD_LATE=S: every page is filled with its own content first (zero pages
 *   aside); after S seconds the duplicate share is written with the patterns and the
 *   parent prints "late: duplicates written" once every process has.
 * - DUP_WORKLOAD_REWRITE=N: after filling, each process rewrites N random pages a second
 *   (in steps every 100 ms), alternately with one of the 16 patterns (contents found
 *   elsewhere) and with new content of its own, until SECONDS are over.
 * The final check knows what was written where.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif

static int is_dup(size_t index, int dup_percent)
{
	return (int)((index * 2654435761UL) % 100) < dup_percent;
}

static int zero_percent;

static int is_zero(size_t index)
{
	return (int)((index * 40503UL) % 100) < zero_percent;
}

/*
 * The content of page index of process pid_salt in state: 0 is the first fill (zero,
 * pattern or the page's own, by index); an odd state one of the 16 patterns; an even one
 * content of the page's own for that state.
 */
static void fill(uint64_t *page, size_t index, int pid_salt, int dup_percent, uint32_t state)
{
	size_t i;
	uint64_t v;

	if (state == 0 && is_zero(index)) {
		memset(page, 0, PAGE);
		return;
	}
	if (state == 0)
		v = is_dup(index, dup_percent) ? 0x0123456789abcdefULL * (index % 16 + 1)
			: ((uint64_t)pid_salt << 40) ^ (index * 0x9e3779b97f4a7c15ULL);
	else if (state & 1)
		v = 0x0123456789abcdefULL * ((index + state) % 16 + 1);
	else
		v = ((uint64_t)pid_salt << 40) ^ (index * 0x9e3779b97f4a7c15ULL) ^
		    ((uint64_t)state << 20) ^ 0x5bd1e995ULL;
	for (i = 0; i < PAGE / 8; i++)
		page[i] = v + i;
}

static int env_int(const char *name)
{
	const char *v = getenv(name);

	return v ? atoi(v) : 0;
}

static int child(size_t mib, int dup_percent, int seconds, int salt, int ready_fd)
{
	size_t pages = mib * 256, i;
	uint64_t want[PAGE / 8], rng = 0x9e3779b97f4a7c15ULL * (uint64_t)salt;
	const char *opt_in = getenv("DUP_WORKLOAD_PRCTL"), *thp = getenv("DUP_WORKLOAD_THP");
	int huge = thp && !strcmp(thp, "1"), late = env_int("DUP_WORKLOAD_LATE");
	int rewrite = env_int("DUP_WORKLOAD_REWRITE");
	uint32_t *state = calloc(pages, sizeof(*state)), version = 0;
	time_t end;
	char *p;

	if (!state || (opt_in && !strcmp(opt_in, "1") && prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0)))
		return 2;
	p = mmap(NULL, pages * PAGE + (2UL << 20), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 2;
	if (huge)
		p = (char *)(((uintptr_t)p + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	madvise(p, pages * PAGE, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (i = 0; i < pages; i++)
		fill((uint64_t *)(p + i * PAGE), i, salt, late ? 0 : dup_percent, 0);
	if (write(ready_fd, "", 1) != 1)
		return 2;
	end = time(NULL) + seconds;
	if (late > 0) {
		sleep((unsigned int)late);
		for (i = 0; i < pages; i++)
			if (!is_zero(i) && is_dup(i, dup_percent)) {
				state[i] = 1;
				fill((uint64_t *)(p + i * PAGE), i, salt, dup_percent, 1);
			}
		if (write(ready_fd, "", 1) != 1)
			return 2;
	}
	close(ready_fd);
	while (rewrite > 0 && time(NULL) < end) {
		int n;

		for (n = 0; n < (rewrite + 9) / 10; n++) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			i = (size_t)(rng % pages);
			state[i] = ++version;
			fill((uint64_t *)(p + i * PAGE), i, salt, dup_percent, state[i]);
		}
		usleep(100000);
	}
	if (time(NULL) < end)
		sleep((unsigned int)(end - time(NULL)));
	for (i = 0; i < pages; i++) {
		fill(want, i, salt, late && !state[i] ? 0 : dup_percent, state[i]);
		if (memcmp(want, p + i * PAGE, PAGE)) {
			fprintf(stderr, "process %d: page %zu changed\n", salt, i);
			return 1;
		}
	}
	return 0;
}

static pid_t pids[256];
static int npids;

static void on_term(int sig)
{
	int i;

	for (i = 0; i < npids; i++)
		kill(pids[i], SIGKILL);
	_exit(128 + sig);
}

int main(int argc, char **argv)
{
	int procs, dup, seconds, i, status, bad = 0, ready[2];
	size_t mib, pages, dups = 0, patterns = 0, zeros, n;
	char c;

	if (argc != 5 && argc != 6)
		return fprintf(stderr, "usage: dup_workload PROCS MIB DUP_PERCENT SECONDS [ZERO_PERCENT]\n"), 2;
	zero_percent = argc == 6 ? atoi(argv[5]) : 0;
	procs = atoi(argv[1]);
	mib = (size_t)atol(argv[2]);
	dup = atoi(argv[3]);
	seconds = atoi(argv[4]);
	if (procs < 1 || procs > 256 || pipe(ready))
		return fprintf(stderr, "dup_workload: 1..256 processes\n"), 2;
	signal(SIGTERM, on_term);
	for (i = 0; i < procs; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			signal(SIGTERM, SIG_DFL);
			_exit(child(mib, dup, seconds, i + 1, ready[1]));
		}
		if (pid > 0)
			pids[npids++] = pid;
	}
	close(ready[1]);
	for (i = 0; i < procs; i++)
		if (read(ready[0], &c, 1) != 1)
			return fprintf(stderr, "a process failed to fill its memory\n"), 2;
	pages = mib * 256;
	for (n = 0; n < pages; n++)
		dups += !is_zero(n) && is_dup(n, dup);
	/* Every duplicate page but the first copy of each of the patterns in use. */
	for (n = 0, patterns = 0; n < 16; n++) {
		size_t k;

		for (k = n; k < pages; k += 16)
			if (!is_zero(k) && is_dup(k, dup)) {
				patterns++;
				break;
			}
	}
	for (n = 0, zeros = 0; n < pages; n++)
		zeros += is_zero(n);
	printf("filled: %zu pages, %zu duplicates, %zu zero pages\n", pages * (size_t)procs,
	       dups * (size_t)procs - patterns, zeros * (size_t)procs);
	fflush(stdout);
	if (env_int("DUP_WORKLOAD_LATE") > 0) {
		for (i = 0; i < procs; i++)
			if (read(ready[0], &c, 1) != 1)
				return fprintf(stderr, "a process failed to write its duplicates\n"), 2;
		printf("late: duplicates written\n");
		fflush(stdout);
	}
	while (wait(&status) > 0)
		bad |= !WIFEXITED(status) || WEXITSTATUS(status);
	printf("dup_workload: %d processes x %zu MiB, %d%% duplicate: contents %s\n", procs, mib,
	       dup, bad ? "CHANGED" : "intact");
	return bad;
}
