// SPDX-License-Identifier: GPL-2.0
/*
 * Merging of identical pages seen from outside the module (run as root, uksm loaded, a
 * swap device on).
 *
 *   merge_pages
 *
 * Three processes (this one, M, and two children, C1 and C2) each fill region R (2048
 * pages): even pages hold one of 64 patterns shared by all, odd pages content unique to
 * the process. M and C2 also fill region S (512 pages, the even ones in both processes
 * alike, each different). M holds a region of
 * pattern pages pinned by vmsplice. With uksm paused while they fill, then running, the
 * program waits until the pattern pages of all processes share frames
 * (/proc/PID/pagemap), and checks:
 *  - unique pages never share a frame, pinned pages are not merged;
 *  - AnonPages falls by about the pages freed; /proc/self/ksm_merging_pages counts M's;
 *  - soft-offlining a merged page (a migration: the kernel must find every mapping of
 *    the page in all three processes through the module) moves all of them to one new
 *    frame; compaction keeps the sharing and the contents;
 *  - writes (COW), fork with writes on both sides, munmap, mremap and MADV_DONTNEED keep
 *    every byte right;
 *  - C2 checks its bytes and exits while merged; M's S pages, now mapped once, are paged
 *    out to swap (MADV_PAGEOUT: reclaim walks the module's rmap) and read back intact.
 * It then prints "MERGED" and waits for SIGUSR1: the caller unmerges (rmmod or run=2) and
 * signals; then AnonPages has grown back, no page of M shares a frame with another page of
 * M or C1, every page of M is its own again (writing a byte back keeps its frame: no
 * copy-on-write happens), every byte of M and C1 is right, and M's ksm_merging_pages is 0.
 * Exit status 0 means every check held. (/proc/kpageflags cannot tell: 6.12 reports
 * KPF_KSM for every anonymous page.)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmtest.h"

#define RPAGES 2048UL
#define SPAGES 512UL
#define PINNED 64UL
#define PATTERNS 64UL
#define SPATTERNS 256UL	/* one pattern per pattern page: each S frame is mapped once per process */

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/* Page i of a region: a pattern page (even i) or unique to (proc, region). */
static void fill(uint64_t *page, int proc, int region, size_t i, size_t patterns)
{
	uint64_t v;
	size_t w;

	/* (The constant keeps this content apart from other test programs'.) */
	if (i % 2 == 0)
		v = 0x0123456789abcdefULL * ((i / 2) % patterns + 1) + ((uint64_t)region << 56);
	else
		v = ((uint64_t)proc << 48) ^ ((uint64_t)region << 40) ^ (i * 0x9e3779b97f4a7c15ULL);
	v ^= 0x6d657267655f7067ULL;
	for (w = 0; w < PAGE / 8; w++)
		page[w] = v + w;
}

/* Checks n pages against fill(); mark[i] != 0 is a byte written at offset 0. */
static int check(const char *p, size_t n, int proc, int region, size_t patterns,
		 const unsigned char *mark, const char *what)
{
	uint64_t want[PAGE / 8];
	size_t i;

	for (i = 0; i < n; i++) {
		fill(want, proc, region, i, patterns);
		if (mark && mark[i])
			((unsigned char *)want)[0] = mark[i];
		if (memcmp(want, p + i * PAGE, PAGE)) {
			printf("FAIL: %s: process %d region %d page %zu differs\n", what, proc,
			       region, i);
			failures++;
			return 0;
		}
	}
	return 1;
}

/*
 * Whether the page at p is shared copy-on-write: writing its first byte back changes its
 * frame. A private page keeps its frame. The contents stay as they were.
 */
static int cow_shared(volatile char *p)
{
	uint64_t before = pfn(getpid(), (const void *)p);

	p[0] = p[0];
	return before != pfn(getpid(), (const void *)p);
}

/* A child process: fills its regions, then obeys one-byte commands. */
struct child {
	pid_t pid;
	int cmd, reply;
	char *r, *s;
};

static void child_main(int proc, int with_s, int cmd, int reply, char *r, char *s)
{
	char c, ok;
	size_t i;

	for (i = 0; i < RPAGES; i++)
		fill((uint64_t *)(r + i * PAGE), proc, 0, i, PATTERNS);
	for (i = 0; with_s && i < SPAGES; i++)
		fill((uint64_t *)(s + i * PAGE), proc, 1, i, SPATTERNS);
	ok = 1;
	if (write(reply, &ok, 1) != 1)
		_exit(2);
	while (read(cmd, &c, 1) == 1) {
		if (c == 'x')
			_exit(0);
		failures = 0;
		check(r, RPAGES, proc, 0, PATTERNS, NULL, "child");
		if (with_s)
			check(s, SPAGES, proc, 1, SPATTERNS, NULL, "child");
		ok = failures == 0;
		if (write(reply, &ok, 1) != 1)
			_exit(2);
	}
	_exit(0);
}

static void start_child(struct child *c, int proc, int with_s)
{
	int to[2], from[2];

	c->r = mmap(NULL, RPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	c->s = mmap(NULL, SPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->r == MAP_FAILED || c->s == MAP_FAILED || pipe(to) || pipe(from))
		exit(2);
	madvise(c->r, RPAGES * PAGE, MADV_NOHUGEPAGE);
	madvise(c->s, SPAGES * PAGE, MADV_NOHUGEPAGE);
	c->pid = fork();
	if (c->pid == 0) {
		close(to[1]);
		close(from[0]);
		child_main(proc, with_s, to[0], from[1], c->r, c->s);
	}
	close(to[0]);
	close(from[1]);
	c->cmd = to[1];
	c->reply = from[0];
	/* The parent's copies of the child's regions are untouched: drop them. */
	munmap(c->r, RPAGES * PAGE);
	munmap(c->s, SPAGES * PAGE);
}

static int child_wait_ready(struct child *c)
{
	char ok = 0;

	return read(c->reply, &ok, 1) == 1 && ok;
}

static int child_check(struct child *c)
{
	char ok = 0;

	return write(c->cmd, "c", 1) == 1 && read(c->reply, &ok, 1) == 1 && ok;
}

static void child_exit(struct child *c)
{
	int st;

	if (write(c->cmd, "x", 1) != 1)
		CHECK(0, "child %d gone", (int)c->pid);
	waitpid(c->pid, &st, 0);
}

/* Pattern pages of M's R whose frame all three processes (or M and C1) map. */
static size_t shared_with(pid_t self, const char *r, const struct child *c1, const struct child *c2)
{
	size_t i, n = 0;

	for (i = 0; i < RPAGES; i += 2) {
		uint64_t f = pfn(self, r + i * PAGE);

		n += f && f == pfn(c1->pid, c1->r + i * PAGE) &&
		     (!c2 || f == pfn(c2->pid, c2->r + i * PAGE));
	}
	return n;
}

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	go = sig;
}

int main(void)
{
	static unsigned char mark[RPAGES];
	static uint64_t frames[3 * RPAGES], pattern_frames[RPAGES / 2];
	struct child c1, c2;
	pid_t self = getpid(), fk;
	char *r, *s, *pinned, *moved;
	long anon_before, anon_after, free_before, free_after, merging, sharing;
	size_t i, j, n, merged = 0, nframes = 0, swapped;
	uint64_t f0, f1;
	int pipefd[2], t, st, tries;
	struct iovec iov;

	signal(SIGUSR1, on_usr1);
	setvbuf(stdout, NULL, _IOLBF, 0);	/* a stalled run shows how far it got */
	set_run("0");
	start_child(&c1, 1, 0);
	start_child(&c2, 2, 1);
	r = mmap(NULL, RPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	s = mmap(NULL, SPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pinned = mmap(NULL, PINNED * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED || s == MAP_FAILED || pinned == MAP_FAILED || pipe(pipefd))
		return perror("setup"), 2;
	madvise(r, RPAGES * PAGE, MADV_NOHUGEPAGE);
	madvise(s, SPAGES * PAGE, MADV_NOHUGEPAGE);
	madvise(pinned, PINNED * PAGE, MADV_NOHUGEPAGE);
	for (i = 0; i < RPAGES; i++)
		fill((uint64_t *)(r + i * PAGE), 0, 0, i, PATTERNS);
	for (i = 0; i < SPAGES; i++)
		fill((uint64_t *)(s + i * PAGE), 0, 1, i, SPATTERNS);
	/* Pattern content, held by vmsplice in a pipe: never to be merged. */
	for (i = 0; i < PINNED; i++)
		fill((uint64_t *)(pinned + i * PAGE), 0, 0, (i * 2) % RPAGES, PATTERNS);
	iov.iov_base = pinned;
	iov.iov_len = PINNED * PAGE;
	fcntl(pipefd[1], F_SETPIPE_SZ, (int)(PINNED * PAGE));
	CHECK(vmsplice(pipefd[1], &iov, 1, 0) == (ssize_t)(PINNED * PAGE), "vmsplice");
	if (!child_wait_ready(&c1) || !child_wait_ready(&c2))
		return printf("FAIL: children did not fill\n"), 1;
	sleep(1);
	CHECK(shared_with(self, r, &c1, &c2) == 0, "pages were merged while uksm was paused");
	anon_before = status_field("/proc/meminfo", "AnonPages:");
	free_before = status_field("/proc/meminfo", "MemFree:");
	set_run("1");

	for (t = 0; t < 1800 && merged < RPAGES / 2 * 95 / 100; t++) {
		usleep(100000);
		merged = shared_with(self, r, &c1, &c2);
	}
	printf("%zu of %lu pattern pages of R on frames shared by all 3 processes after %.1f s\n",
	       merged, RPAGES / 2, t / 10.0);
	CHECK(merged >= RPAGES / 2 * 95 / 100, "only %zu of %lu pattern pages merged", merged, RPAGES / 2);
	/* Two more passes: every page has been looked at since, and counts are exact. */
	wait_passes(2);
	sleep(1);
	anon_after = status_field("/proc/meminfo", "AnonPages:");
	free_after = status_field("/proc/meminfo", "MemFree:");
	merging = status_field("/proc/self/ksm_merging_pages", "");
	sharing = status_field("/sys/kernel/mm/uksm/pages_sharing", "");
	/* Pattern pages: 3 x 1024 in R, 2 x 256 in S, on 64 + 16 frames. */
	n = 3 * RPAGES / 2 + 2 * SPAGES / 2 - PATTERNS - SPATTERNS;
	printf("AnonPages %ld -> %ld kB, MemFree %ld -> %ld kB (%zu pages mergeable); M's ksm_merging_pages %ld; pages_shared %ld pages_sharing %ld pages_unshared %ld\n",
	       anon_before, anon_after, free_before, free_after, n, merging,
	       status_field("/sys/kernel/mm/uksm/pages_shared", ""), sharing,
	       status_field("/sys/kernel/mm/uksm/pages_unshared", ""));
	CHECK(anon_before - anon_after >= (long)(n * 4 * 8 / 10),
	      "AnonPages fell by %ld kB, %zu pages were mergeable", anon_before - anon_after, n);
	/* (A few pages of the program's own data are alike in M and its children too.) */
	CHECK(merging >= (long)((RPAGES + SPAGES) / 2 * 95 / 100) && merging <= (long)((RPAGES + SPAGES) / 2 + 32),
	      "ksm_merging_pages of M is %ld, M has %lu pattern pages", merging, (RPAGES + SPAGES) / 2);
	CHECK(sharing >= (long)(n * 95 / 100), "pages_sharing %ld for %zu mergeable pages", sharing, n);

	/* Unique pages share no frame with anything; pinned pages were not merged. */
	for (i = 1; i < RPAGES; i += 2) {
		frames[nframes++] = pfn(self, r + i * PAGE);
		frames[nframes++] = pfn(c1.pid, c1.r + i * PAGE);
		frames[nframes++] = pfn(c2.pid, c2.r + i * PAGE);
	}
	for (j = 0; j < RPAGES; j += 2)
		pattern_frames[j / 2] = pfn(self, r + j * PAGE);
	for (i = 0, n = 0; i < nframes; i++)
		for (j = 0; j < RPAGES / 2; j++)
			n += frames[i] == pattern_frames[j];
	for (i = 0; i < nframes; i++)
		for (j = i + 1; j < nframes; j++)
			n += frames[i] && frames[i] == frames[j];
	CHECK(n == 0, "%zu unique pages share a frame", n);
	for (i = 0, n = 0; i < PINNED; i++) {
		f0 = pfn(self, pinned + i * PAGE);
		for (j = 0; j < RPAGES / 2; j++)
			n += f0 == pattern_frames[j];
	}
	CHECK(n == 0, "%zu pages pinned by vmsplice were merged", n);
	check(r, RPAGES, 0, 0, PATTERNS, NULL, "M after merging");

	/* Migration: soft-offline a merged page; all its mappings move to the new frame. */
	f0 = pfn(self, r + 10 * PAGE);
	t = soft_offline(r + 10 * PAGE, &tries);
	f1 = pfn(self, r + 10 * PAGE);
	printf("soft offline of a merged page: %d after %d tries, frame %llx -> %llx (C1 %llx, C2 %llx)\n", t, tries,
	       (unsigned long long)f0, (unsigned long long)f1,
	       (unsigned long long)pfn(c1.pid, c1.r + 10 * PAGE),
	       (unsigned long long)pfn(c2.pid, c2.r + 10 * PAGE));
	CHECK(t == 0 && f1 && f1 != f0, "the merged page did not migrate");
	CHECK(f1 == pfn(c1.pid, c1.r + 10 * PAGE) && f1 == pfn(c2.pid, c2.r + 10 * PAGE),
	      "after migration the processes map different frames");
	/* Page 10 has pattern 6, as have pages 138, 266, ...: all still on one frame. */
	CHECK(f1 == pfn(self, r + 138 * PAGE), "a page of the same pattern left the frame");
	write_file("/proc/sys/vm/compact_memory", "1");
	n = shared_with(self, r, &c1, &c2);
	printf("after compaction: %zu pattern pages on frames shared by all 3\n", n);
	CHECK(n >= merged * 9 / 10, "compaction broke the sharing: %zu of %zu", n, merged);
	check(r, RPAGES, 0, 0, PATTERNS, NULL, "M after migration");

	/* COW: written pages get their own frame, the rest keep theirs. */
	for (i = 0; i < RPAGES; i += 8) {
		r[i * PAGE] = (char)0xa5;
		mark[i] = 0xa5;
		CHECK(pfn(self, r + i * PAGE) != pfn(c1.pid, c1.r + i * PAGE), "written page %zu still shared", i);
	}
	check(r, RPAGES, 0, 0, PATTERNS, mark, "M after writes");
	CHECK(child_check(&c1) && child_check(&c2), "children's pages changed by M's writes");

	/* fork: both sides write, each sees only its own writes. */
	fk = fork();
	if (fk == 0) {
		for (i = 2; i < RPAGES; i += 8)
			r[i * PAGE] = 0x3c, mark[i] = 0x3c;
		failures = 0;
		check(r, RPAGES, 0, 0, PATTERNS, mark, "fork child");
		_exit(failures ? 1 : 0);
	}
	for (i = 4; i < RPAGES; i += 8)
		r[i * PAGE] = 0x5a, mark[i] = 0x5a;
	waitpid(fk, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the forked child saw wrong contents");
	check(r, RPAGES, 0, 0, PATTERNS, mark, "M after fork");

	/* munmap, mremap and MADV_DONTNEED of merged ranges. */
	CHECK(munmap(r + 1536 * PAGE, 256 * PAGE) == 0, "munmap");
	moved = mmap(NULL, 256 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (moved != MAP_FAILED)
		moved = mremap(r + 1792 * PAGE, 256 * PAGE, 256 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, moved);
	CHECK(moved != MAP_FAILED, "mremap");
	CHECK(madvise(r + 1280 * PAGE, 256 * PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED");
	for (i = 1280; i < 1536; i++)
		CHECK(r[i * PAGE] == 0 && r[i * PAGE + 4095] == 0, "page %zu not empty after MADV_DONTNEED", i);
	check(r, 1280, 0, 0, PATTERNS, mark, "M after munmap, mremap, DONTNEED");
	for (i = 0; moved != MAP_FAILED && i < 256; i++) {
		uint64_t want[PAGE / 8];

		fill(want, 0, 0, 1792 + i, PATTERNS);
		if (mark[1792 + i])
			((unsigned char *)want)[0] = mark[1792 + i];
		CHECK(!memcmp(want, moved + i * PAGE, PAGE), "moved page %zu differs", i);
	}
	CHECK(child_check(&c1) && child_check(&c2), "children's pages changed");

	/* C2 checks and exits while merged; M's S pages are then mapped once: swap them. */
	for (i = 0, n = 0; i < SPAGES; i += 2) {
		frames[i / 2] = pfn(self, s + i * PAGE);
		n += frames[i / 2] && frames[i / 2] == pfn(c2.pid, c2.s + i * PAGE);
	}
	CHECK(n >= SPAGES / 2 * 95 / 100, "only %zu of %lu S pattern pages shared with C2", n, SPAGES / 2);
	CHECK(child_check(&c2), "C2's pages changed");
	child_exit(&c2);
	wait_passes(1);
	/* The same frames (merged pages, now mapped once) are still there. */
	for (i = 0, j = 0; i < SPAGES; i += 2)
		j += frames[i / 2] == pfn(self, s + i * PAGE);
	CHECK(j == SPAGES / 2, "%zu of M's S pattern pages changed frames after C2 exited", SPAGES / 2 - j);
	CHECK(madvise(s, SPAGES * PAGE, MADV_PAGEOUT) == 0, "MADV_PAGEOUT");
	for (i = 0, swapped = 0; i < SPAGES; i += 2)
		swapped += (pagemap_entry(self, s + i * PAGE) >> 62) & 1;
	printf("after C2 exited: MADV_PAGEOUT swapped out %zu of %lu merged S pages\n", swapped, SPAGES / 2);
	CHECK(swapped >= SPAGES / 2 / 2, "only %zu merged pages were swapped out", swapped);
	check(s, SPAGES, 0, 1, SPATTERNS, NULL, "M's S after swap-in");
	check(r, 1280, 0, 0, PATTERNS, mark, "M's R");

	anon_before = status_field("/proc/meminfo", "AnonPages:");
	printf("MERGED\n");
	fflush(stdout);
	while (!go)
		pause();
	sleep(1);
	anon_after = status_field("/proc/meminfo", "AnonPages:");
	/* C1's 1024 pattern pages were on 64 shared frames: each has its own page again. */
	printf("unmerged: AnonPages %ld -> %ld kB\n", anon_before, anon_after);
	CHECK(anon_after - anon_before >= (long)((RPAGES / 2 - PATTERNS) * 4 * 8 / 10),
	      "AnonPages rose by %ld kB only after unmerging", anon_after - anon_before);

	/* Unmerged: M's pages share no frame with C1's nor with each other. */
	for (i = 0, n = 0; i < 1280; i += 2)
		n += pfn(self, r + i * PAGE) == pfn(c1.pid, c1.r + i * PAGE);
	CHECK(n == 0, "%zu pages of M still share a frame with C1", n);
	for (i = 0, n = 0; i + 2 * PATTERNS < 1280; i += 2)
		n += pfn(self, r + i * PAGE) == pfn(self, r + (i + 2 * PATTERNS) * PAGE);
	CHECK(n == 0, "%zu pages of M still share a frame with each other", n);
	for (i = 0, n = 0; i < 1280; i++)
		n += cow_shared(r + i * PAGE);
	for (i = 0; i < SPAGES; i++)
		n += cow_shared(s + i * PAGE);
	for (i = 0; moved != MAP_FAILED && i < 256; i++)
		n += cow_shared(moved + i * PAGE);
	CHECK(n == 0, "%zu pages of M are still shared copy-on-write", n);
	check(r, 1280, 0, 0, PATTERNS, mark, "M after unmerge");
	check(s, SPAGES, 0, 1, SPATTERNS, NULL, "M's S after unmerge");
	CHECK(child_check(&c1), "C1's pages changed by unmerging");
	merging = status_field("/proc/self/ksm_merging_pages", "");
	CHECK(merging == 0, "ksm_merging_pages is %ld after unmerge", merging);
	child_exit(&c1);
	printf("after unmerge: %d failures\n", failures);
	return failures ? 1 : 0;
}
