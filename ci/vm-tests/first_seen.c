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
 *   - "look-alike": VARIANTS pages come first, each the content with one word changed.
 *     uksm hashes a sample of a page's words, so most of them have the content's partial
 *     hash while differing from it.
 * Within 120 s at least 95% of each mapping's ordinary pages must share one frame, while
 * no pinned page changes frame, no variant page is shared, and every byte stays what was
 * written. Exit status 0 means every check held.
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

static void check_bytes(const char *p, size_t n, int seed, size_t variants, const char *what)
{
	char want[PAGE];
	size_t i;

	for (i = 0; i < n; i++) {
		fill(want, seed, i < variants ? i + 1 : 0);
		if (memcmp(p + i * PAGE, want, PAGE)) {
			CHECK(0, "%s: page %zu differs", what, i);
			return;
		}
	}
}

int main(void)
{
	static uint64_t frames[PINNED];
	char *pinned, *alike;
	size_t i, pinned_free = 0, alike_free = 0, n;
	int pipefd[2], t;
	struct iovec iov;

	setvbuf(stdout, NULL, _IOLBF, 0);
	set_run("0");
	pinned = mmap(NULL, (PINNED + FREE) * PAGE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	alike = mmap(NULL, (VARIANTS + FREE) * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pinned == MAP_FAILED || alike == MAP_FAILED || pipe(pipefd))
		return perror("setup"), 2;
	/* Different protections keep the two mappings apart (adjacent ones would merge). */
	mprotect(alike, (VARIANTS + FREE) * PAGE, PROT_READ | PROT_WRITE | PROT_EXEC);
	madvise(pinned, (PINNED + FREE) * PAGE, MADV_NOHUGEPAGE);
	madvise(alike, (VARIANTS + FREE) * PAGE, MADV_NOHUGEPAGE);
	for (i = 0; i < PINNED + FREE; i++)
		fill(pinned + i * PAGE, 3, 0);
	for (i = 0; i < VARIANTS + FREE; i++)
		fill(alike + i * PAGE, 5, i < VARIANTS ? i + 1 : 0);
	iov.iov_base = pinned;
	iov.iov_len = PINNED * PAGE;
	fcntl(pipefd[1], F_SETPIPE_SZ, (int)(PINNED * PAGE));
	CHECK(vmsplice(pipefd[1], &iov, 1, 0) == (ssize_t)(PINNED * PAGE), "vmsplice");
	for (i = 0; i < PINNED; i++)
		frames[i] = pfn(getpid(), pinned + i * PAGE);
	set_run("1");

	for (t = 0; t < 1200; t++) {
		usleep(100000);
		pinned_free = on_last_frame(pinned + PINNED * PAGE, FREE);
		alike_free = on_last_frame(alike + VARIANTS * PAGE, FREE);
		if (pinned_free >= FREE * 95 / 100 && alike_free >= FREE * 95 / 100)
			break;
	}
	printf("after %.1f s: %zu of %lu ordinary pages share one frame behind %lu pinned pages, %zu of %lu behind %lu look-alike pages\n",
	       t / 10.0, pinned_free, FREE, PINNED, alike_free, FREE, VARIANTS);
	CHECK(pinned_free >= FREE * 95 / 100, "behind pinned pages only %zu of %lu merged", pinned_free, FREE);
	CHECK(alike_free >= FREE * 95 / 100, "behind look-alike pages only %zu of %lu merged", alike_free, FREE);
	wait_passes(1);
	for (i = 0; i < PINNED; i++)
		CHECK(pfn(getpid(), pinned + i * PAGE) == frames[i], "pinned page %zu changed frame", i);
	for (i = 0, n = 0; i < VARIANTS; i++)
		n += pfn(getpid(), alike + i * PAGE) == pfn(getpid(), alike + VARIANTS * PAGE);
	CHECK(n == 0, "%zu variant pages share the frame of the ordinary pages", n);
	check_bytes(pinned, PINNED + FREE, 3, 0, "pinned mapping");
	check_bytes(alike, VARIANTS + FREE, 5, VARIANTS, "look-alike mapping");
	printf("%d failures\n", failures);
	return failures != 0;
}
