// SPDX-License-Identifier: GPL-2.0
/*
 * Many copies of one page (run as root, uksm loaded and running).
 *
 *   max_sharing PAGES MAX
 *
 * Fills PAGES pages with one content and waits (at most 600 s) until 98 % of them share
 * frames with others (/proc/self/pagemap) in groups of at most MAX (max_page_sharing):
 * no frame may be mapped more than MAX times, and about PAGES / MAX frames are used. Then
 * soft-offlines (migrates) one of the pages and checks that all the pages of its frame
 * moved, and every byte.
 * Exit status 0 means every check held.
 */
#define _GNU_SOURCE
#include <time.h>

#include "vmtest.h"

/* Frames of the n pages at p, read from /proc/self/pagemap in one go (0: not present). */
static void frames_of(const char *p, size_t n, uint64_t *f)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	size_t i;

	if (fd < 0 || pread(fd, f, n * 8, (off_t)((uintptr_t)p / PAGE * 8)) != (ssize_t)(n * 8))
		memset(f, 0, n * 8);
	if (fd >= 0)
		close(fd);
	for (i = 0; i < n; i++)
		f[i] = (f[i] >> 63) & 1 ? f[i] & ((1ULL << 55) - 1) : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	size_t n = argc > 2 ? strtoul(argv[1], NULL, 10) : 0, max, i, w, frames, biggest, run, shared;
	uint64_t *f, old, moved_to;
	char *p;
	int t, tries, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3 || !n)
		return fprintf(stderr, "usage: max_sharing PAGES MAX\n"), 2;
	max = strtoul(argv[2], NULL, 10);
	p = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	f = calloc(n, sizeof(*f));
	if (p == MAP_FAILED || !f)
		return 2;
	for (i = 0; i < n; i++)
		for (w = 0; w < PAGE / 8; w++)
			((uint64_t *)(p + i * PAGE))[w] = 0x6d61787368617265ULL + w;
	for (t = 0; t < 600; t += 2) {
		sleep(2);
		frames_of(p, n, f);
		qsort(f, n, sizeof(*f), cmp_u64);
		frames = biggest = shared = 0;
		for (i = 0; i < n; i += run) {
			for (run = 1; i + run < n && f[i + run] == f[i]; run++)
				;
			frames++;
			biggest = run > biggest ? run : biggest;
			shared += run > 1 ? run : 0;
		}
		if (shared * 100 >= n * 98)
			break;
	}
	printf("after %d s: %zu of %zu pages share frames; %zu frames in use, at most %zu mappings each\n",
	       t, shared, n, frames, biggest);
	CHECK(shared * 100 >= n * 98, "copies not merged");
	CHECK(biggest <= max, "a frame is mapped %zu times, more than max_page_sharing %zu",
	      biggest, max);
	CHECK(frames <= n / max + n / 50 + 1, "%zu frames for %zu copies", frames, n);
	old = pfn(getpid(), p);
	r = soft_offline(p, &tries);
	CHECK(r == 0, "soft offline failed after %d tries", tries);
	moved_to = pfn(getpid(), p);
	frames_of(p, n, f);
	for (i = 0, run = 0, w = 0; i < n; i++) {
		run += f[i] == old;
		w += f[i] == moved_to;
	}
	printf("soft offline: %s after %d tries; %zu pages still on the old frame, %zu on the new one\n",
	       r ? "failed" : "done", tries, run, w);
	CHECK(run == 0, "mappings left on the offlined frame");
	for (i = 0; i < n; i++)
		for (w = 0; w < PAGE / 8; w++)
			if (((uint64_t *)(p + i * PAGE))[w] != 0x6d61787368617265ULL + w) {
				CHECK(0, "page %zu changed", i);
				w = PAGE;
				i = n;
			}
	printf("max_sharing: %d failures\n", failures);
	return failures ? 1 : 0;
}
