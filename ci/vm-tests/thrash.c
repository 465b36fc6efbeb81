// SPDX-License-Identifier: GPL-2.0
/*
 * A VMA whose merged pages are rewritten in a loop (t_thrash.sh).
 *
 * thrash SECONDS_SETTLE SECONDS_WRITE SECONDS_AFTER
 *
 * Maps 8 MiB (2048 pages; THP as the system says) holding 16 contents, 128 copies each,
 * and waits up to SECONDS_SETTLE for 90 % of its pages to be merged (a page is merged
 * when /proc/self/pagemap shows its frame mapped at another address of the region too;
 * /proc/kpageflags cannot tell: 6.12 reports KPF_KSM for every anonymous page). Then, for
 * SECONDS_WRITE, it writes one byte (the same value) into every page every 200 ms: each
 * write to a merged page breaks the merge (a copy on write) and leaves an identical page
 * to merge again. Before each sweep of writes it counts the merged pages, and sums the
 * counts of the sweeps in the last 30 s of the writing (the second half if it is
 * shorter than 60 s): the merges it breaks (the
 * kernel's own count, cow_ksm in /proc/vmstat, needs CONFIG_VM_EVENT_COUNTERS, which the
 * test kernels lack), and the merges uksm made meanwhile (pages_merged: nothing else is
 * merged in the VM then). Then it stops writing and
 * waits up to SECONDS_AFTER (unless 0) for 90 % of its pages to be merged again, and
 * checks their contents. Output lines: "merged: S s", "broken_last: N", "merges_last: N",
 * "remerged: S s" or
 * "FAIL: ...".
 */
#include "vmtest.h"

#define PAGES 2048
#define CONTENTS 16

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Pages of the region whose frame another page of the region maps too. */
static int merged_pages(const unsigned char *p)
{
	static uint64_t frames[PAGES];
	int i, n = 0;

	for (i = 0; i < PAGES; i++)
		frames[i] = pfn(getpid(), p + i * PAGE);
	qsort(frames, PAGES, sizeof(frames[0]), cmp_u64);
	for (i = 0; i < PAGES; i++)
		if (frames[i] && ((i > 0 && frames[i - 1] == frames[i]) ||
				  (i + 1 < PAGES && frames[i + 1] == frames[i])))
			n++;
	return n;
}

/* Waits up to secs for 90 % of the pages to be merged; returns the time taken or -1. */
static double wait_merged(const unsigned char *p, int secs)
{
	double t0 = now_s();

	while (now_s() - t0 < secs) {
		if (merged_pages(p) >= PAGES * 9 / 10)
			return now_s() - t0;
		usleep(200000);
	}
	return -1;
}

static int contents_ok(const unsigned char *p)
{
	int i, j;

	for (i = 0; i < PAGES; i++)
		for (j = 0; j < (int)PAGE; j += 512)
			if (p[i * PAGE + j] != (unsigned char)(0x40 + i % CONTENTS))
				return 0;
	return 1;
}

int main(int argc, char **argv)
{
	int settle, write_s, after, i;
	unsigned char *p;
	double t, t0;
	long broken = 0, merged_mid = -1, merged_end;
	double last;

	if (argc != 4)
		return 2;
	settle = atoi(argv[1]);
	write_s = atoi(argv[2]);
	after = atoi(argv[3]);
	last = write_s >= 60 ? write_s - 30 : write_s / 2.0;
	p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	if (failures)
		return 1;
	for (i = 0; i < PAGES; i++)
		memset(p + i * PAGE, 0x40 + i % CONTENTS, PAGE);
	printf("filled: %d pages, %d contents\n", PAGES, CONTENTS);
	fflush(stdout);

	t = wait_merged(p, settle);
	CHECK(t >= 0, "90 %% of the pages not merged in %d s (%d merged)", settle,
	      merged_pages(p));
	if (failures)
		return 1;
	printf("merged: %.1f s\n", t);
	fflush(stdout);

	t0 = now_s();
	while ((t = now_s() - t0) < write_s) {
		long sweep = merged_pages(p);

		for (i = 0; i < PAGES; i++)
			((volatile unsigned char *)p)[i * PAGE] = (unsigned char)(0x40 + i % CONTENTS);
		if (t >= last) {
			broken += sweep;
			if (merged_mid < 0)
				merged_mid = status_field("/sys/kernel/mm/uksm/pages_merged", "");
		}
		if (getenv("THRASH_VERBOSE"))
			printf("sweep at %.1f s: %ld merged\n", t, sweep);
		usleep(200000);
	}
	merged_end = status_field("/sys/kernel/mm/uksm/pages_merged", "");
	printf("broken_last: %ld\n", broken);
	printf("merges_last: %ld\n", merged_end - merged_mid);
	fflush(stdout);

	if (after > 0) {
		t = wait_merged(p, after);
		CHECK(t >= 0, "90 %% of the pages not merged again %d s after the writes stopped (%d merged)",
		      after, merged_pages(p));
		if (t >= 0)
			printf("remerged: %.1f s\n", t);
	}
	CHECK(contents_ok(p), "contents changed");
	return failures ? 1 : 0;
}
