// SPDX-License-Identifier: GPL-2.0
/*
 * Pages a pass meets first must not keep the later pages of their content from merging,
 * whether they cannot be merged or merely look alike (run as root, uksm loaded).
 *
 *   first_seen
 *
 * Two mappings, each scanned from its lowest address, each ending in FREE ordinary pages
 * of one content:
 *   - "pinned": PINNED pages of that same content come first, held by vmsplice in a pipe,
 *     so the kernel refuses to merge them;
 *   - "look-alike": 2 x VARIANTS pages come first, each the content with one word changed,
 *     each variant twice. uksm hashes a sample of a page's words, so most variants have
 *     the content's partial hash while differing from it, and each pair of them becomes a
 *     merged page of its own with that partial hash.
 * Within 6 passes of uksm (and 120 s) at least 95% of each mapping's ordinary pages must
 * share one frame and every pair of variants must share a frame of its own, while no
 * pinned page changes frame, no two different contents share a frame, and every byte
 * stays what was written. (A page of a pair met first cannot merge until the pass after
 * it was written, when the kernel's per-CPU LRU batches no longer hold it: one pass
 * merges what is found, a few more are slack.) Exit status 0 means every check held.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmtest.h"

#define PINNED 64UL
#define VARIANTS 32UL
#define FREE 512UL

/* How many of the n pages at p share the frame of the last one. */
static size_t on_last_frame(const char *p, size_t n)
{
	uint64_t f = pfn(getpid(), p + (n - 1) * PAGE);
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		c += f && pfn(getpid(), p + i * PAGE) == f;
	return c;
}

static void fill(char *page, int seed, size_t variant)
{
	size_t i;

	for (i = 0; i < PAGE; i++)
		page[i] = (char)(i * 7 + seed);
	if (variant)	/* one 4-byte word differs, a different word for each variant */
		((uint32_t *)page)[(variant * 37) % (PAGE / 4)] ^= 0x5a5a5a5a;
}

/* Pages of the look-alike mapping: variant i at i and VARIANTS + i, then ordinary ones. */
static size_t variant_of(int seed, size_t i)
{
	return seed == 5 && i < 2 * VARIANTS ? i % VARIANTS + 1 : 0;
}

/* How many variants have both their pages on one frame. */
static size_t variant_pairs(const char *alike)
{
	size_t i, c = 0;

	for (i = 0; i < VARIANTS; i++) {
		uint64_t f = pfn(getpid(), alike + i * PAGE);

		c += f && f == pfn(getpid(), alike + (VARIANTS + i) * PAGE);
	}
	return c;
}

static void check_bytes(const char *p, size_t n, int seed, const char *what)
{
	char want[PAGE];
	size_t i;

	for (i = 0; i < n; i++) {
		fill(want, seed, variant_of(seed, i));
		if (memcmp(p + i * PAGE, want, PAGE)) {
			CHECK(0, "%s: page %zu differs", what, i);
			return;
		}
	}
}

int main(void)
{
	static uint64_t frames[PINNED], vframes[VARIANTS + 1];
	char *pinned, *alike;
	size_t i, j, pinned_free = 0, alike_free = 0, pairs = 0, n;
	int pipefd[2], t;
	long start, passes = 0;
	struct iovec iov;

	setvbuf(stdout, NULL, _IOLBF, 0);
	set_run("0");
	pinned = mmap(NULL, (PINNED + FREE) * PAGE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	alike = mmap(NULL, (2 * VARIANTS + FREE) * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pinned == MAP_FAILED || alike == MAP_FAILED || pipe(pipefd))
		return perror("setup"), 2;
	/* Different protections keep the two mappings apart (adjacent ones would merge). */
	mprotect(alike, (2 * VARIANTS + FREE) * PAGE, PROT_READ | PROT_WRITE | PROT_EXEC);
	madvise(pinned, (PINNED + FREE) * PAGE, MADV_NOHUGEPAGE);
	madvise(alike, (2 * VARIANTS + FREE) * PAGE, MADV_NOHUGEPAGE);
	for (i = 0; i < PINNED + FREE; i++)
		fill(pinned + i * PAGE, 3, 0);
	for (i = 0; i < 2 * VARIANTS + FREE; i++)
		fill(alike + i * PAGE, 5, i < 2 * VARIANTS ? i % VARIANTS + 1 : 0);
	iov.iov_base = pinned;
	iov.iov_len = PINNED * PAGE;
	fcntl(pipefd[1], F_SETPIPE_SZ, (int)(PINNED * PAGE));
	CHECK(vmsplice(pipefd[1], &iov, 1, 0) == (ssize_t)(PINNED * PAGE), "vmsplice");
	for (i = 0; i < PINNED; i++)
		frames[i] = pfn(getpid(), pinned + i * PAGE);
	start = status_field("/sys/kernel/mm/uksm/full_scans", "");
	set_run("1");

	for (t = 0; t < 1200; t++) {
		usleep(100000);
		pinned_free = on_last_frame(pinned + PINNED * PAGE, FREE);
		alike_free = on_last_frame(alike + 2 * VARIANTS * PAGE, FREE);
		pairs = variant_pairs(alike);
		passes = status_field("/sys/kernel/mm/uksm/full_scans", "") - start;
		if (pinned_free >= FREE * 95 / 100 && alike_free >= FREE * 95 / 100 && pairs == VARIANTS)
			break;
	}
	printf("after %.1f s (at most %ld passes): %zu of %lu ordinary pages share one frame behind %lu pinned pages, %zu of %lu behind %lu look-alike pages, of which %zu of %lu pairs share a frame\n",
	       t / 10.0, passes, pinned_free, FREE, PINNED, alike_free, FREE, 2 * VARIANTS, pairs, VARIANTS);
	CHECK(pinned_free >= FREE * 95 / 100, "behind pinned pages only %zu of %lu merged", pinned_free, FREE);
	CHECK(alike_free >= FREE * 95 / 100, "behind look-alike pages only %zu of %lu merged", alike_free, FREE);
	CHECK(pairs == VARIANTS, "only %zu of %lu pairs of look-alike pages merged", pairs, VARIANTS);
	CHECK(passes <= 6, "merging took %ld passes", passes);
	wait_passes(1);
	for (i = 0; i < PINNED; i++)
		CHECK(pfn(getpid(), pinned + i * PAGE) == frames[i], "pinned page %zu changed frame", i);
	/* Frames of the variants and of the ordinary pages: all different. */
	for (i = 0; i <= VARIANTS; i++)
		vframes[i] = pfn(getpid(), alike + (i < VARIANTS ? i : 2 * VARIANTS) * PAGE);
	for (i = 0, n = 0; i <= VARIANTS; i++)
		for (j = i + 1; j <= VARIANTS; j++)
			n += vframes[i] == vframes[j];
	CHECK(n == 0, "%zu pairs of different contents share a frame", n);
	check_bytes(pinned, PINNED + FREE, 3, "pinned mapping");
	check_bytes(alike, 2 * VARIANTS + FREE, 5, "look-alike mapping");
	printf("%d failures\n", failures);
	return failures != 0;
}
