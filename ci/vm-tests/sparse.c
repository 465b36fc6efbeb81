// SPDX-License-Identifier: GPL-2.0
/*
 * A huge, nearly empty reservation (run as root, uksm loaded and running).
 *
 *   sparse GIB
 *
 * Maps GIB GiB with MAP_NORESERVE and touches 512 pages spread over it (two contents).
 * A scan pass and run=2 must cost what the present pages cost, not the virtual size:
 * once the pages are merged, the time of two full passes, and of run=2, must each stay
 * under 20 s (a walk of every address of 1 TiB is 268 million steps). Checks that the
 * pages were merged (/proc/self/pagemap), unmerged by run=2, and intact.
 * Exit status 0 means every check held.
 */
#define _GNU_SOURCE
#include <time.h>

#include "vmtest.h"

#define TOUCHED 512UL

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static char *page_at(char *p, size_t len, size_t i)
{
	return p + (len / TOUCHED) * i / PAGE * PAGE;
}

/* Distinct frames among the touched pages; *alone: touched pages on a frame of their own. */
static size_t frames_alone(char *p, size_t len, size_t *alone)
{
	uint64_t f[TOUCHED];
	size_t i, j, n = 0, users[TOUCHED] = { 0 };

	*alone = 0;
	for (i = 0; i < TOUCHED; i++) {
		f[i] = pfn(getpid(), page_at(p, len, i));
		for (j = 0; j < i && f[j] != f[i]; j++)
			;
		n += j == i;
		users[j]++;
	}
	for (i = 0; i < TOUCHED; i++)
		*alone += users[i] == 1;
	return n;
}

static size_t frames(char *p, size_t len)
{
	size_t alone;

	return frames_alone(p, len, &alone);
}

int main(int argc, char **argv)
{
	size_t len = (argc > 1 ? strtoul(argv[1], NULL, 10) : 1024) << 30, i, n;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	double t0, pass, unmerge;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (p == MAP_FAILED)
		return perror("mmap"), 2;
	t0 = now();
	for (i = 0; i < TOUCHED; i++)
		memset(page_at(p, len, i), 'a' + (int)(i % 2), PAGE);
	printf("touched %lu pages in %.2f s\n", TOUCHED, now() - t0);
	/*
	 * Merging takes longer than passes: with THP=always each touched page sits in its own
	 * THP, which the merge splits (tens of seconds for the 512 on the debug kernels under
	 * TCG). The passes are timed once everything is merged, when a pass only walks. 7.3's
	 * khugepaged collapses a range of one merged page and 511 zero pages into a THP again
	 * (a few a minute): the wait ends at the first moment no touched page is alone.
	 */
	size_t alone;
	double merged_in;
	long collapses = status_field("/proc/vmstat", "thp_collapse_alloc ");

	t0 = now();
	while (((n = frames_alone(p, len, &alone)) > 8 || alone) && now() - t0 < 300)
		usleep(100000);
	merged_in = now() - t0;
	wait_passes(1);
	t0 = now();
	wait_passes(2);
	pass = now() - t0;
	printf("%zu GiB reserved, %lu pages touched: merged in %.2f s to %zu frames, %zu pages alone; then two passes in %.2f s; THPs collapsed by khugepaged meanwhile: %ld\n",
	       len >> 30, TOUCHED, merged_in, n, alone, pass, status_field("/proc/vmstat", "thp_collapse_alloc ") - collapses);
	CHECK(pass < 20, "two passes took %.1f s", pass);
	/*
	 * Every page merged: none on a frame of its own. One content may end up on two
	 * merged pages when two were made at once (docs/status.md, known limits).
	 */
	CHECK(alone == 0 && n <= 8, "touched pages not merged (%zu frames, %zu alone)", n, alone);
	t0 = now();
	set_run("2");
	unmerge = now() - t0;
	n = frames(p, len);
	printf("run=2 in %.2f s; %zu frames after it\n", unmerge, n);
	CHECK(unmerge < 20, "run=2 took %.1f s", unmerge);
	CHECK(n == TOUCHED, "pages still merged after run=2 (%zu frames)", n);
	for (i = 0; i < TOUCHED; i++) {
		char *q = page_at(p, len, i);

		CHECK(q[0] == 'a' + (int)(i % 2) && q[PAGE - 1] == q[0], "page %zu changed", i);
	}
	set_run("1");
	printf("sparse: %d failures\n", failures);
	return failures ? 1 : 0;
}
