// SPDX-License-Identifier: GPL-2.0
/*
 * Duplicates and zeros inside transparent huge pages (run as root).
 *
 *   thp_merge uksm|ksm MB
 *
 * Three processes each map MB MiB in MADV_HUGEPAGE memory holding the same contents (page
 * i of every process alike, every page of a process different from the others) and MB/2
 * MiB of zero-filled huge pages (written, so they are real THPs, not the huge zero page).
 * AnonHugePages (/proc/PID/smaps_rollup) shows that THPs were there. Then the scanner
 * runs: "uksm" expects uksm.ko loaded and running; "ksm" marks the memory MADV_MERGEABLE
 * and starts built-in KSM (use_zero_pages=1, pages_to_scan=1000), for reference.
 *
 * Waits (at most 300 s) until 95 % of the duplicate pages are one frame in all three
 * processes (/proc/PID/pagemap) and 95 % of the zero pages map the zero page, printing
 * when each was reached. With uksm, process 0's duplicates are then collapsed into huge
 * pages from outside (process_madvise(MADV_COLLAPSE), what khugepaged does to a range of
 * small pages): uksm must merge the copies again within 300 s and not take the collapse
 * for thrashing (thrash_holds unchanged). Finally every byte is checked. Exit status 0
 * means all was reached and every byte is intact.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include "vmtest.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define PROCS 3
#define HPAGE (2UL << 20)

static size_t npages, nzero;

/*
 * Word w of page i of process k: the same in every process, except the first page of each
 * 2 MiB, which is the process's own. That page is never merged, so its mapping stays
 * writable, as a range of a working process has some: 6.12's MADV_COLLAPSE and khugepaged
 * leave a range alone whose pages are all mapped read-only (all merged).
 */
static uint64_t word(int k, size_t page, size_t w)
{
	uint64_t own = page % (HPAGE / PAGE) ? 0 : (uint64_t)(k + 1) << 56;

	return (0x7468706d65726765ULL ^ (0x9e3779b97f4a7c15ULL * (page + 1)) ^ own) + w;
}

/* A 2 MiB-aligned MADV_HUGEPAGE mapping of len bytes. */
static char *huge_area(size_t len)
{
	char *p = mmap(NULL, len + HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED)
		exit(2);
	p = (char *)(((uintptr_t)p + HPAGE - 1) & ~(HPAGE - 1));
	if (madvise(p, len, MADV_HUGEPAGE))
		exit(2);
	return p;
}

static int intact(int k, const char *dup, const char *zero)
{
	size_t i, w;

	for (i = 0; i < npages; i++)
		for (w = 0; w < PAGE / 8; w++)
			if (((const uint64_t *)(dup + i * PAGE))[w] != word(k, i, w))
				return 0;
	for (i = 0; i < nzero * PAGE; i++)
		if (zero[i])
			return 0;
	return 1;
}

/* Duplicate pages that are one frame in all processes. */
static size_t one_frame(const pid_t *pid, char *const *dup)
{
	size_t i, same = 0;

	for (i = 0; i < npages; i++) {
		uint64_t f = pfn(pid[0], dup[0] + i * PAGE);

		same += f && f == pfn(pid[1], dup[1] + i * PAGE) && f == pfn(pid[2], dup[2] + i * PAGE);
	}
	return same;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int ksm = argc > 2 && !strcmp(argv[1], "ksm");
	size_t mb = argc > 2 ? strtoul(argv[2], NULL, 10) : 16, i, w;
	pid_t pid[PROCS];
	char *dup[PROCS], *zero[PROCS];
	int go[2], ready[2], k, st;
	long huge_kb = 0;
	uint64_t zero_pfn;
	double start, t_dup = -1, t_zero = -1;
	size_t same = 0, zeros = 0;
	long collapsed;
	char x = 0;
	volatile char *probe = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3 || probe == MAP_FAILED || pipe(go) || pipe(ready))
		return fprintf(stderr, "usage: thp_merge uksm|ksm MB\n"), 2;
	(void)probe[0];
	zero_pfn = pfn(getpid(), (const void *)probe);
	npages = mb * 256;
	nzero = npages / 2;
	for (k = 0; k < PROCS; k++) {
		dup[k] = huge_area(npages * PAGE);
		zero[k] = huge_area(nzero * PAGE);
		pid[k] = fork();
		if (pid[k] == 0) {
			for (i = 0; i < npages; i++)
				for (w = 0; w < PAGE / 8; w++)
					((uint64_t *)(dup[k] + i * PAGE))[w] = word(k, i, w);
			for (i = 0; i < nzero * PAGE; i += HPAGE)
				zero[k][i] = 1;
			memset(zero[k], 0, nzero * PAGE);
			if (ksm && (madvise(dup[k], npages * PAGE, MADV_MERGEABLE) ||
				    madvise(zero[k], nzero * PAGE, MADV_MERGEABLE)))
				_exit(2);
			if (write(ready[1], &x, 1) != 1 || read(go[0], &x, 1) != 1)
				_exit(2);
			_exit(intact(k, dup[k], zero[k]) ? 0 : 1);
		}
	}
	for (k = 0; k < PROCS; k++) {
		char path[64];

		if (read(ready[0], &x, 1) != 1)
			return 2;
		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid[k]);
		huge_kb += status_field(path, "AnonHugePages:");
	}
	printf("%s: AnonHugePages of the %d processes: %ld kB (of %zu kB)\n", ksm ? "ksm" : "uksm",
	       PROCS, huge_kb, PROCS * (npages + nzero) * 4);
	CHECK(huge_kb > 0, "no THPs to begin with");
	if (ksm) {
		write_file("/sys/kernel/mm/ksm/use_zero_pages", "1");
		write_file("/sys/kernel/mm/ksm/pages_to_scan", "1000");
		write_file("/sys/kernel/mm/ksm/run", "1");
	}
	collapsed = status_field("/proc/vmstat", "thp_collapse_alloc ");
	start = now();
	while (now() - start < 300 && (t_dup < 0 || t_zero < 0)) {
		zeros = 0;
		usleep(200000);
		same = one_frame(pid, dup);
		for (k = 0; k < PROCS; k++)
			for (i = 0; i < nzero; i++)
				zeros += pfn(pid[k], zero[k] + i * PAGE) == zero_pfn;
		if (t_dup < 0 && same * 100 >= npages * 95) {
			t_dup = now() - start;
			printf("%s: %zu of %zu duplicate pages one frame in all %d processes after %.1f s\n",
			       ksm ? "ksm" : "uksm", same, npages, PROCS, t_dup);
		}
		if (t_zero < 0 && zeros * 100 >= PROCS * nzero * 95) {
			t_zero = now() - start;
			printf("%s: %zu of %zu zero pages on the zero page after %.1f s\n",
			       ksm ? "ksm" : "uksm", zeros, PROCS * nzero, t_zero);
		}
	}
	/* khugepaged copies ranges of small pages, merged ones among them, into huge pages. */
	printf("%s: %ld huge pages collapsed by khugepaged meanwhile\n", ksm ? "ksm" : "uksm",
	       status_field("/proc/vmstat", "thp_collapse_alloc ") - collapsed);
	CHECK(t_dup >= 0, "duplicates inside THPs not merged in 300 s (%zu of %zu)", same, npages);
	CHECK(t_zero >= 0, "zero-filled THPs not merged in 300 s");
	if (!ksm && t_dup >= 0) {
		/*
		 * What khugepaged does to a range of small pages when it finds few enough of them
		 * shared: copy process 0's merged duplicates into new huge pages (MADV_COLLAPSE,
		 * from outside). That is no write, so uksm must not hold the area for thrashing
		 * but merge the copies again.
		 */
		long holds = status_field("/sys/kernel/mm/uksm/thrash_holds", ""), huge;
		char path[64];
		int pidfd = syscall(SYS_pidfd_open, pid[0], 0);
		struct iovec iov = { dup[0], npages * PAGE };
		double t_again = -1;
		long r = -1;
		int copied;

		/* EAGAIN: a page was busy for a moment (uksmd may hold a reference); retried. */
		for (i = 0; pidfd >= 0 && i < 50 && r < 0; i++) {
			r = syscall(SYS_process_madvise, pidfd, &iov, 1, MADV_COLLAPSE, 0);
			if (r < 0 && errno != EAGAIN)
				break;
			if (r < 0)
				usleep(100000);
		}
		CHECK(r == (long)(npages * PAGE), "process_madvise(MADV_COLLAPSE): %s", strerror(errno));
		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid[0]);
		huge = status_field(path, "AnonHugePages:");
		same = one_frame(pid, dup);
		printf("uksm: process 0 collapsed: AnonHugePages %ld kB, %zu of %zu duplicate pages "
		       "one frame in all %d processes\n", huge, same, npages, PROCS);
		copied = huge >= (long)(npages * 2) && same * 2 < npages;
		CHECK(copied, "MADV_COLLAPSE copied fewer than half the merged pages into huge pages");
		start = now();
		while (copied && now() - start < 300 && t_again < 0) {
			usleep(200000);
			same = one_frame(pid, dup);
			if (same * 100 >= npages * 95)
				t_again = now() - start;
		}
		printf("uksm: %zu of %zu duplicate pages one frame again after %.1f s; thrash_holds "
		       "%ld -> %ld\n", same, npages, t_again, holds,
		       status_field("/sys/kernel/mm/uksm/thrash_holds", ""));
		CHECK(t_again >= 0, "the collapsed duplicates were not merged again in 300 s");
		CHECK(status_field("/sys/kernel/mm/uksm/thrash_holds", "") == holds,
		      "a collapse was taken for thrashing");
		if (pidfd >= 0)
			close(pidfd);
	}
	if (ksm)
		write_file("/sys/kernel/mm/ksm/run", "2");
	for (k = 0; k < PROCS; k++)
		if (write(go[1], &x, 1) != 1)
			return 2;
	for (k = 0; k < PROCS; k++) {
		waitpid(pid[k], &st, 0);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "process %d: bytes changed", k);
	}
	printf("thp_merge %s: %d failures\n", ksm ? "ksm" : "uksm", failures);
	return failures ? 1 : 0;
}
