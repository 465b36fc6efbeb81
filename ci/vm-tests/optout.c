// SPDX-License-Identifier: GPL-2.0
/*
 * Opting out of merging, seen from outside the module (run as root, uksm loaded and
 * paused with run=0 by the caller).
 *
 *   optout
 *
 * Regions A, B, C, D of 128 pages each hold the same 32 patterns (each 4 times). A is
 * marked MADV_UNMERGEABLE before uksm runs. Then, from /proc/PID/pagemap:
 *  - B, C and D are merged (with each other and within themselves), A is not;
 *  - MADV_UNMERGEABLE on C unmerges C at once and C stays unmerged; on the middle of D it
 *    unmerges exactly that part;
 *  - MADV_MERGEABLE on A lets A be merged again;
 *  - mremap() of merged B gives the moved pages their own frames (as KSM does), they are
 *    merged again at the new address, and soft-offlining one of them (a migration, which
 *    needs the rmap of the new address) moves every mapping of it;
 *  - a child that enabled merging with prctl(PR_SET_MEMORY_MERGE, 1) is merged; after
 *    prctl(PR_SET_MEMORY_MERGE, 0) its pages are unmerged at once, neither they nor a region
 *    it maps afterwards nor its own child's are merged again;
 *  - every byte stays right throughout.
 * Exit status 0 means every check held.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmtest.h"

#define N 128UL
#define PATS 32UL

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif

static void fill(char *p, size_t n)
{
	size_t i, w;

	for (i = 0; i < n; i++) {
		uint64_t v = 0x9e3779b97f4a7c15ULL * (i % PATS + 1) ^ 0x6f70746f75742121ULL;

		for (w = 0; w < PAGE / 8; w++)
			((uint64_t *)(p + i * PAGE))[w] = v + w;
	}
}

static void check(const char *p, size_t n, const char *what)
{
	static char want[N * PAGE];

	fill(want, n);
	CHECK(!memcmp(want, p, n * PAGE), "%s: contents changed", what);
}

/* Pages i of [from, to) whose frame is the frame of page i of b (b in this process). */
static size_t shared(pid_t pid, const char *a, const char *b, size_t from, size_t to)
{
	size_t i, n = 0;

	for (i = from; i < to; i++) {
		uint64_t f = pfn(pid, a + i * PAGE);

		n += f && f == pfn(getpid(), b + i * PAGE);
	}
	return n;
}

/* Pages of a (of pid) sharing the frame of the first page with their pattern. */
static size_t merged_within(pid_t pid, const char *a)
{
	size_t i, n = 0;

	for (i = PATS; i < N; i++) {
		uint64_t f = pfn(pid, a + i * PAGE);

		n += f && f == pfn(pid, a + (i % PATS) * PAGE);
	}
	return n;
}

static char *region(void)
{
	char *p = mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		exit(2);
	madvise(p, N * PAGE, MADV_NOHUGEPAGE);
	return p;
}

/* Waits (at most 60 s) until cond holds. */
#define WAIT_FOR(cond)                                                                     \
	do {                                                                               \
		int t_;                                                                    \
		for (t_ = 0; t_ < 600 && !(cond); t_++)                                    \
			usleep(100000);                                                    \
	} while (0)

/* The prctl child: commands on `cmd`, pids and acks on `reply`. */
static void prctl_child(int cmd, int reply)
{
	char c, *f = NULL, *g = NULL, *h;
	pid_t gc = 0;
	int st, p2[2];

	failures = 0;
	while (read(cmd, &c, 1) == 1) {
		switch (c) {
		case 'e':	/* enable merging, map and fill F */
			CHECK(prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) == 0, "prctl(PR_SET_MEMORY_MERGE, 1)");
			f = region();
			fill(f, N);
			if (write(reply, &f, sizeof(f)) != sizeof(f))
				_exit(2);
			break;
		case 'd':	/* disable merging, map and fill G */
			CHECK(prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0) == 0, "prctl(PR_SET_MEMORY_MERGE, 0)");
			g = region();
			fill(g, N);
			if (write(reply, &g, sizeof(g)) != sizeof(g))
				_exit(2);
			break;
		case 'f':	/* fork a grandchild that maps and fills H */
			if (pipe(p2))
				_exit(2);
			gc = fork();
			if (gc == 0) {
				h = region();
				fill(h, N);
				if (write(p2[1], &h, sizeof(h)) != sizeof(h))
					_exit(2);
				pause();
				_exit(0);
			}
			if (read(p2[0], &h, sizeof(h)) != sizeof(h) ||
			    write(reply, &gc, sizeof(gc)) != sizeof(gc) ||
			    write(reply, &h, sizeof(h)) != sizeof(h))
				_exit(2);
			break;
		case 'x':
			if (f)
				check(f, N, "prctl child F");
			if (g)
				check(g, N, "prctl child G");
			if (gc > 0) {
				kill(gc, SIGKILL);
				waitpid(gc, &st, 0);
			}
			_exit(failures ? 1 : 0);
		}
	}
	_exit(2);
}

int main(void)
{
	pid_t self = getpid(), child, gc;
	char *a = region(), *b = region(), *c = region(), *d = region(), *e, *f, *g, *h;
	int to[2], from[2], st, tries;
	uint64_t f0, f1;
	char cmd;

	set_run("0");
	CHECK(madvise(a, N * PAGE, MADV_UNMERGEABLE) == 0, "MADV_UNMERGEABLE on A");
	fill(a, N);
	fill(b, N);
	fill(c, N);
	fill(d, N);
	set_run("1");
	WAIT_FOR(merged_within(self, b) == N - PATS && shared(self, c, b, 0, N) == N &&
		 shared(self, d, b, 0, N) == N);
	printf("B merged within: %zu, C with B: %zu, D with B: %zu (of %lu)\n",
	       merged_within(self, b), shared(self, c, b, 0, N), shared(self, d, b, 0, N), N);
	CHECK(merged_within(self, b) == N - PATS, "B not merged");
	CHECK(shared(self, c, b, 0, N) == N && shared(self, d, b, 0, N) == N, "C, D not merged with B");
	CHECK(shared(self, a, b, 0, N) == 0 && merged_within(self, a) == 0,
	      "MADV_UNMERGEABLE region A was merged");

	/* Opting out after merging: unmerged at once, and for good. */
	CHECK(madvise(c, N * PAGE, MADV_UNMERGEABLE) == 0, "MADV_UNMERGEABLE on C");
	CHECK(shared(self, c, b, 0, N) == 0 && merged_within(self, c) == 0,
	      "C still merged right after MADV_UNMERGEABLE (%zu)", shared(self, c, b, 0, N));
	CHECK(madvise(d + 32 * PAGE, 64 * PAGE, MADV_UNMERGEABLE) == 0, "MADV_UNMERGEABLE on D[32..96)");
	CHECK(shared(self, d, b, 32, 96) == 0, "D[32..96) still merged after MADV_UNMERGEABLE");
	CHECK(shared(self, d, b, 0, 32) == 32 && shared(self, d, b, 96, N) == 32,
	      "the rest of D was unmerged too");
	wait_passes(2);
	CHECK(shared(self, a, b, 0, N) == 0 && merged_within(self, a) == 0, "A merged");
	CHECK(shared(self, c, b, 0, N) == 0 && merged_within(self, c) == 0, "C merged again");
	CHECK(shared(self, d, b, 32, 96) == 0, "D[32..96) merged again");
	CHECK(shared(self, d, b, 0, 32) == 32 && shared(self, d, b, 96, N) == 32, "D's rest unmerged");
	check(a, N, "A");
	check(c, N, "C");
	check(d, N, "D");

	/* Opting in again. */
	CHECK(madvise(a, N * PAGE, MADV_MERGEABLE) == 0, "MADV_MERGEABLE on A");
	WAIT_FOR(shared(self, a, b, 0, N) == N);
	CHECK(shared(self, a, b, 0, N) == N, "A not merged after MADV_MERGEABLE (%zu)", shared(self, a, b, 0, N));

	/*
	 * mremap: the moved pages get their own frames (seen with uksm paused, or it would
	 * merge them again at once), then are merged at the new place.
	 */
	set_run("0");
	e = mmap(NULL, N * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	e = mremap(b, N * PAGE, N * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, e);
	CHECK(e != MAP_FAILED, "mremap");
	if (e != MAP_FAILED) {
		CHECK(shared(self, e, a, 0, N) == 0, "moved pages still merged (%zu)", shared(self, e, a, 0, N));
		check(e, N, "moved B");
		set_run("1");
		WAIT_FOR(shared(self, e, a, 0, N) == N);
		CHECK(shared(self, e, a, 0, N) == N, "moved pages not merged again (%zu)", shared(self, e, a, 0, N));
		wait_passes(1);
		f0 = pfn(self, e);
		CHECK(soft_offline(e, &tries) == 0, "soft offline (%d tries)", tries);
		f1 = pfn(self, e);
		CHECK(f1 != f0 && f1 == pfn(self, a) && f1 == pfn(self, d),
		      "soft offline of a page merged at its new address: %llx -> %llx, A %llx, D %llx",
		      (unsigned long long)f0, (unsigned long long)f1,
		      (unsigned long long)pfn(self, a), (unsigned long long)pfn(self, d));
		check(e, N, "moved B after soft offline");
	}
	set_run("1");
	check(a, N, "A");

	/* prctl(PR_SET_MEMORY_MERGE, 0) after enabling it. */
	if (pipe(to) || pipe(from))
		return 2;
	child = fork();
	if (child == 0) {
		close(to[1]);
		close(from[0]);
		prctl_child(to[0], from[1]);
	}
	close(to[0]);
	close(from[1]);
	cmd = 'e';
	if (write(to[1], &cmd, 1) != 1 || read(from[0], &f, sizeof(f)) != sizeof(f))
		return printf("FAIL: prctl child\n"), 1;
	WAIT_FOR(shared(child, f, a, 0, N) == N);
	CHECK(shared(child, f, a, 0, N) == N, "prctl child's F not merged (%zu)", shared(child, f, a, 0, N));
	cmd = 'd';
	if (write(to[1], &cmd, 1) != 1 || read(from[0], &g, sizeof(g)) != sizeof(g))
		return printf("FAIL: prctl child\n"), 1;
	CHECK(shared(child, f, a, 0, N) == 0 && merged_within(child, f) == 0,
	      "F still merged right after prctl(PR_SET_MEMORY_MERGE, 0)");
	cmd = 'f';
	if (write(to[1], &cmd, 1) != 1 || read(from[0], &gc, sizeof(gc)) != sizeof(gc) ||
	    read(from[0], &h, sizeof(h)) != sizeof(h))
		return printf("FAIL: prctl child\n"), 1;
	wait_passes(2);
	CHECK(shared(child, f, a, 0, N) == 0 && merged_within(child, f) == 0, "F merged again after opting out");
	CHECK(shared(child, g, a, 0, N) == 0 && merged_within(child, g) == 0, "G (mapped after opting out) merged");
	CHECK(shared(gc, h, a, 0, N) == 0 && merged_within(gc, h) == 0, "the opted-out process's child was merged");
	cmd = 'x';
	CHECK(write(to[1], &cmd, 1) == 1, "prctl child");
	waitpid(child, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "prctl child's contents changed");
	printf("optout: %d failures\n", failures);
	return failures ? 1 : 0;
}
