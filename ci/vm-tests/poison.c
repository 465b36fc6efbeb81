// SPDX-License-Identifier: GPL-2.0
/*
 * Memory failure of a merged page (run as root, uksm loaded; the caller sets
 * vm.memory_failure_early_kill=1).
 *
 *   poison
 *
 * This process (M) and a child (C) each fill 32 pages with 32 patterns, with uksm paused;
 * then uksm merges them: M's and C's pages share frames (/proc/PID/pagemap). M injects a
 * memory failure into one merged page (MADV_HWPOISON). The kernel must find every process
 * mapping it through the module's rmap items: C, which never touches the page, gets an
 * early SIGBUS (BUS_MCEERR_AO, memory_failure_early_kill: collect_procs_ksm), and its
 * mapping of the page is gone (reading it gives SIGBUS BUS_MCEERR_AR instead of the lost
 * page); M gets SIGBUS on access too. Every other page keeps its contents in both.
 * Exit status 0 means every check held.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define VMTEST_SIGBUS
#include "vmtest.h"

#define N 32UL
#define VICTIM 7UL


static void fill(char *p)
{
	size_t i, w;

	for (i = 0; i < N; i++)
		for (w = 0; w < PAGE / 8; w++)
			((uint64_t *)(p + i * PAGE))[w] =
				(0x706f69736f6e2121ULL ^ (0x9e3779b97f4a7c15ULL * (i + 1))) + w;
}

/* Pages other than VICTIM intact. */
static int intact(const char *p)
{
	static char want[N * PAGE];

	fill(want);
	return !memcmp(want, p, VICTIM * PAGE) &&
	       !memcmp(want + (VICTIM + 1) * PAGE, p + (VICTIM + 1) * PAGE, (N - VICTIM - 1) * PAGE);
}

int main(void)
{
	struct sigaction sa = { .sa_sigaction = on_bus, .sa_flags = SA_SIGINFO | SA_RESTART };
	char *m, *c;
	int go[2], report[2], result[3], t, st;
	size_t i, n = 0;
	pid_t child, self = getpid();
	char x = 0;

	sigaction(SIGBUS, &sa, NULL);
	set_run("0");
	m = mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	c = mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || c == MAP_FAILED || pipe(go) || pipe(report))
		return 2;
	madvise(m, N * PAGE, MADV_NOHUGEPAGE);
	madvise(c, N * PAGE, MADV_NOHUGEPAGE);
	child = fork();
	if (child == 0) {
		munmap(m, N * PAGE);
		fill(c);
		if (write(report[1], &x, 1) != 1 || read(go[0], &x, 1) != 1)
			_exit(2);
		/* Poisoned by now: the early kill may have arrived already; else wait a little. */
		for (t = 0; t < 50 && !early_code; t++)
			usleep(100000);
		result[0] = early_code;
		result[1] = probe(c + VICTIM * PAGE);
		result[2] = intact(c);
		if (write(report[1], result, sizeof(result)) != sizeof(result))
			_exit(2);
		_exit(0);
	}
	/* C's region stays at address c in C only. */
	fill(m);
	if (read(report[0], &x, 1) != 1)
		return 2;
	set_run("1");
	for (t = 0; t < 600 && n < N; t++) {
		usleep(100000);
		for (i = 0, n = 0; i < N; i++) {
			uint64_t f = pfn(self, m + i * PAGE);

			n += f && f == pfn(child, c + i * PAGE);
		}
	}
	printf("%zu of %lu pages of M on frames shared with C\n", n, N);
	CHECK(n == N, "pages not merged");
	set_run("0");
	CHECK(madvise(m + VICTIM * PAGE, PAGE, MADV_HWPOISON) == 0, "MADV_HWPOISON");
	CHECK(write(go[1], &x, 1) == 1, "child gone");
	if (read(report[0], result, sizeof(result)) != sizeof(result))
		return printf("FAIL: child did not report\n"), 1;
	waitpid(child, &st, 0);
	printf("C: early SIGBUS code %d, reading the page: SIGBUS code %d, other pages %s\n",
	       result[0], result[1], result[2] ? "intact" : "CHANGED");
	CHECK(result[0] == BUS_MCEERR_AO, "C got no early kill (code %d): the kernel did not find it", result[0]);
	CHECK(result[1] == BUS_MCEERR_AR, "C could read the poisoned page (code %d)", result[1]);
	CHECK(result[2], "C's other pages changed");
	t = probe(m + VICTIM * PAGE);
	CHECK(t == BUS_MCEERR_AR, "M could read the poisoned page (code %d)", t);
	CHECK(intact(m), "M's other pages changed");
	set_run("1");
	printf("poison: %d failures\n", failures);
	return failures ? 1 : 0;
}
