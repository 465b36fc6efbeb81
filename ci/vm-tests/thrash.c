// SPDX-License-Identifier: GPL-2.0
/*
 * A VMA whose merged pages are rewritten in a loop (t_thrash.sh).
 *
 * thrash SECONDS_SETTLE SECONDS_WRITE SECONDS_AFTER
 *
 * Maps 8 MiB (2048 pages; THP as the system says) holding 16 contents, 128 copies each,
 * and waits up to SECONDS_SETTLE for 90 % of its pages to be merged (KSM pages in
 * /proc/kpageflags). Then, for SECONDS_WRITE, it writes one byte (the same value) into
 * every page every 200 ms: each write to a merged page breaks the merge (a copy on
 * write) and leaves an identical page to merge again. Before each write it looks the
 * page up (pagemap, kpageflags) and counts the merged pages it breaks during the second
 * half of the writing (the kernel's own count, cow_ksm in /proc/vmstat, needs
 * CONFIG_VM_EVENT_COUNTERS, which the test kernels lack). Then it stops writing and
 * waits up to SECONDS_AFTER (unless 0) for 90 % of its pages to be merged again, and
 * checks their contents. Output lines: "merged: S s", "broken_second_half: N", "remerged: S s" or
 * "FAIL: ...".
 */
#include "vmtest.h"
#include <time.h>

#define PAGES 2048
#define CONTENTS 16
#define KPF_KSM 21

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Whether the page at p maps a KSM page. */
static int is_merged(const unsigned char *p, int kpageflags)
{
	uint64_t f = pfn(getpid(), p), flags = 0;

	return f && pread(kpageflags, &flags, 8, (off_t)(f * 8)) == 8 && (flags >> KPF_KSM) & 1;
}

/* Pages of the region that map a KSM page. */
static int merged_pages(const unsigned char *p, int kpageflags)
{
	int i, n = 0;

	for (i = 0; i < PAGES; i++)
		n += is_merged(p + i * PAGE, kpageflags);
	return n;
}

/* Waits up to secs for 90 % of the pages to be merged; returns the time taken or -1. */
static double wait_merged(const unsigned char *p, int kpageflags, int secs)
{
	double t0 = now_s();

	while (now_s() - t0 < secs) {
		if (merged_pages(p, kpageflags) >= PAGES * 9 / 10)
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
	int settle, write_s, after, kpageflags, i;
	unsigned char *p;
	double t, t0;
	long broken = 0;

	if (argc != 4)
		return 2;
	settle = atoi(argv[1]);
	write_s = atoi(argv[2]);
	after = atoi(argv[3]);
	kpageflags = open("/proc/kpageflags", O_RDONLY);
	CHECK(kpageflags >= 0, "open /proc/kpageflags: %s", strerror(errno));
	p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	if (failures)
		return 1;
	for (i = 0; i < PAGES; i++)
		memset(p + i * PAGE, 0x40 + i % CONTENTS, PAGE);
	printf("filled: %d pages, %d contents\n", PAGES, CONTENTS);
	fflush(stdout);

	t = wait_merged(p, kpageflags, settle);
	CHECK(t >= 0, "90 %% of the pages not merged in %d s (%d merged)", settle,
	      merged_pages(p, kpageflags));
	if (failures)
		return 1;
	printf("merged: %.1f s\n", t);
	fflush(stdout);

	t0 = now_s();
	while ((t = now_s() - t0) < write_s) {
		for (i = 0; i < PAGES; i++) {
			if (t >= write_s / 2.0)
				broken += is_merged(p + i * PAGE, kpageflags);
			((volatile unsigned char *)p)[i * PAGE] = (unsigned char)(0x40 + i % CONTENTS);
		}
		usleep(200000);
	}
	printf("broken_second_half: %ld\n", broken);
	fflush(stdout);

	if (after > 0) {
		t = wait_merged(p, kpageflags, after);
		CHECK(t >= 0, "90 %% of the pages not merged again %d s after the writes stopped (%d merged)",
		      after, merged_pages(p, kpageflags));
		if (t >= 0)
			printf("remerged: %.1f s\n", t);
	}
	CHECK(contents_ok(p), "contents changed");
	return failures ? 1 : 0;
}
