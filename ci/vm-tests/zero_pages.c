// SPDX-License-Identifier: GPL-2.0
/*
 * Zero-page merging seen from outside the module (run as root, uksm loaded).
 *
 *   zero_pages
 *
 * With uksm paused (run=0), fills 16 MiB with present, all-zero private pages (and a
 * control region of distinct content, a region held by vmsplice in a pipe, and a region
 * registered with userfaultfd, neither of which may be merged), then lets
 * uksm run and waits until it has mapped them to the zero page: /proc/self/pagemap shows
 * the zero page's frame, RssAnon and AnonPages fall, /proc/self/ksm_stat counts them. Then writes (COW), fork with writes on both sides,
 * munmap, mremap, MADV_DONTNEED, each followed by a byte-for-byte check. It then prints
 * "MERGED" and waits for SIGUSR1: the caller unmerges (rmmod or run=2) and signals, and
 * the program checks that no page maps the zero page's frame any more, that every byte is
 * still right, and that its ksm_zero_pages is 0. Exit status 0 means every check held.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmtest.h"

#define NPAGES 4096UL
#define PINNED 64UL

static size_t count_zero_mapped(const char *p, size_t n, uint64_t zero_pfn)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		c += pfn(getpid(), p + i * PAGE) == zero_pfn;
	return c;
}

/* Page i's expected first byte: 0 unless written with the marker. */
static void check_bytes(const char *p, size_t n, const unsigned char *want, const char *what)
{
	size_t i, j;

	for (i = 0; i < n; i++)
		for (j = 0; j < PAGE; j++)
			if ((unsigned char)p[i * PAGE + j] != (j == 0 ? want[i] : 0)) {
				CHECK(0, "%s: page %zu byte %zu is %d", what, i, j, p[i * PAGE + j]);
				return;
			}
}

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	go = sig;
}

int main(void)
{
	static unsigned char want[NPAGES];
	char *p, *control, *pinned, *probe, *moved, *uffd_area;
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	int uffd;
	uint64_t zero_pfn;
	long free_before, free_after, anon_before, anon_after, rss_before, rss_after, stat_zero;
	size_t i, merged = 0;
	int pipefd[2], t;
	struct iovec iov;
	pid_t child;

	signal(SIGUSR1, on_usr1);
	probe = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	p = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	control = mmap(NULL, 256 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pinned = mmap(NULL, PINNED * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uffd_area = mmap(NULL, PINNED * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (probe == MAP_FAILED || p == MAP_FAILED || control == MAP_FAILED ||
	    pinned == MAP_FAILED || uffd_area == MAP_FAILED || pipe(pipefd))
		return perror("setup"), 2;
	madvise(p, NPAGES * PAGE, MADV_NOHUGEPAGE);
	madvise(pinned, PINNED * PAGE, MADV_NOHUGEPAGE);
	(void)*(volatile char *)probe;	/* a read fault maps the shared zero page */
	zero_pfn = pfn(getpid(), probe);
	CHECK(zero_pfn != 0, "cannot read the zero page's frame (not root?)");
	/* Fill with uksm paused, so MemFree can be read before and after merging. */
	set_run("0");
	for (i = 0; i < NPAGES; i++) {
		p[i * PAGE] = 1;	/* a private page ... */
		p[i * PAGE] = 0;	/* ... of zeros */
	}
	for (i = 0; i < 256; i++)
		memset(control + i * PAGE, (int)(i % 255) + 1, PAGE);
	memset(pinned, 0, PINNED * PAGE);
	/* Present zero pages, then registered with userfaultfd: a monitor owns them. */
	for (i = 0; i < PINNED; i++)
		uffd_area[i * PAGE] = 1, uffd_area[i * PAGE] = 0;
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	reg.range.start = (uintptr_t)uffd_area;
	reg.range.len = PINNED * PAGE;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	CHECK(uffd >= 0 && ioctl(uffd, UFFDIO_API, &api) == 0 && ioctl(uffd, UFFDIO_REGISTER, &reg) == 0,
	      "userfaultfd registration");
	for (i = 0; i < PINNED; i++)
		pinned[i * PAGE] = 0;
	/* vmsplice holds references on the pinned pages until the pipe is read. */
	iov.iov_base = pinned;
	iov.iov_len = PINNED * PAGE;
	fcntl(pipefd[1], F_SETPIPE_SZ, (int)(PINNED * PAGE));
	CHECK(vmsplice(pipefd[1], &iov, 1, 0) == (ssize_t)(PINNED * PAGE), "vmsplice");
	sleep(1);
	free_before = status_field("/proc/meminfo", "MemFree:");
	anon_before = status_field("/proc/meminfo", "AnonPages:");
	rss_before = status_field("/proc/self/status", "RssAnon:");
	set_run("1");

	for (t = 0; t < 1200 && merged < NPAGES * 95 / 100; t++) {
		usleep(100000);
		merged = count_zero_mapped(p, NPAGES, zero_pfn);
	}
	sleep(1);
	free_after = status_field("/proc/meminfo", "MemFree:");
	anon_after = status_field("/proc/meminfo", "AnonPages:");
	rss_after = status_field("/proc/self/status", "RssAnon:");
	stat_zero = status_field("/proc/self/ksm_stat", "ksm_zero_pages ");
	printf("merged %zu of %lu zero pages in %.1f s; RssAnon %ld -> %ld kB, AnonPages %ld -> %ld kB, MemFree %ld -> %ld kB; ksm_stat ksm_zero_pages %ld\n",
	       merged, NPAGES, t / 10.0, rss_before, rss_after, anon_before, anon_after,
	       free_before, free_after, stat_zero);
	CHECK(merged >= NPAGES * 95 / 100, "only %zu of %lu zero pages merged", merged, NPAGES);
	/* The process and the system hold that many fewer anonymous pages. (MemFree is
	 * printed but not judged: on the KASAN test kernel, freed memory sits in KASAN's
	 * quarantine for a while.) */
	CHECK(rss_before - rss_after >= (long)(merged * 4 * 9 / 10),
	      "RssAnon fell by %ld kB for %zu merged pages", rss_before - rss_after, merged);
	CHECK(anon_before - anon_after >= (long)(merged * 4 * 8 / 10),
	      "AnonPages fell by %ld kB for %zu merged pages", anon_before - anon_after, merged);
	CHECK(stat_zero >= (long)merged, "ksm_stat counts %ld zero pages, pagemap shows %zu", stat_zero, merged);
	/* Two more whole passes: every page below has been looked at since it was written. */
	wait_passes(2);
	CHECK(count_zero_mapped(control, 256, zero_pfn) == 0, "non-zero pages were mapped to the zero page");
	CHECK(count_zero_mapped(pinned, PINNED, zero_pfn) == 0, "pages held by vmsplice were merged");
	CHECK(count_zero_mapped(uffd_area, PINNED, zero_pfn) == 0, "pages registered with userfaultfd were merged");
	for (i = 0; i < 256; i++)
		CHECK((unsigned char)control[i * PAGE + 7] == i % 255 + 1, "control page %zu changed", i);

	/* Writes break the sharing of exactly the pages written. */
	for (i = 0; i < NPAGES; i += 4) {
		p[i * PAGE] = (char)0xa5;
		want[i] = 0xa5;
	}
	check_bytes(p, NPAGES, want, "after writes");
	for (i = 0; i < NPAGES; i += 4)
		CHECK(pfn(getpid(), p + i * PAGE) != zero_pfn, "written page %zu still maps the zero page", i);

	/* fork: each side writes its own pages and sees only its own writes. */
	child = fork();
	if (child == 0) {
		for (i = 1; i < NPAGES; i += 4) {
			p[i * PAGE] = 0x3c;
			want[i] = 0x3c;
		}
		failures = 0;
		check_bytes(p, NPAGES, want, "child after fork");
		_exit(failures ? 1 : 0);
	}
	for (i = 2; i < NPAGES; i += 4) {
		p[i * PAGE] = 0x5a;
		want[i] = 0x5a;
	}
	waitpid(child, &t, 0);
	CHECK(WIFEXITED(t) && WEXITSTATUS(t) == 0, "child saw wrong contents");
	check_bytes(p, NPAGES, want, "parent after fork");

	/* munmap a part, mremap a part elsewhere, MADV_DONTNEED a part. */
	CHECK(munmap(p + 3072 * PAGE, 512 * PAGE) == 0, "munmap");
	moved = mmap(NULL, 512 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (moved != MAP_FAILED)
		moved = mremap(p + 3584 * PAGE, 512 * PAGE, 512 * PAGE,
			       MREMAP_MAYMOVE | MREMAP_FIXED, moved);
	CHECK(moved != MAP_FAILED, "mremap");
	if (moved != MAP_FAILED)
		check_bytes(moved, 512, want + 3584, "after mremap");
	CHECK(madvise(p + 2048 * PAGE, 512 * PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED");
	memset(want + 2048, 0, 512);
	check_bytes(p, 3072, want, "after munmap and MADV_DONTNEED");
	stat_zero = status_field("/proc/self/ksm_stat", "ksm_zero_pages ");
	printf("after writes, fork, munmap, mremap, DONTNEED: ksm_zero_pages %ld, %d failures\n",
	       stat_zero, failures);

	printf("MERGED\n");
	fflush(stdout);
	while (!go)
		pause();

	/* The caller has unmerged everything (pages 2048..2559 were read back after
	 * MADV_DONTNEED, so they map the ordinary zero page: not counted). */
	CHECK(count_zero_mapped(p, 2048, zero_pfn) == 0, "%zu pages still map the zero page",
	      count_zero_mapped(p, 2048, zero_pfn));
	if (moved != MAP_FAILED) {
		CHECK(count_zero_mapped(moved, 512, zero_pfn) == 0, "moved pages still map the zero page");
		check_bytes(moved, 512, want + 3584, "moved pages after unmerge");
	}
	check_bytes(p, 3072, want, "after unmerge");
	stat_zero = status_field("/proc/self/ksm_stat", "ksm_zero_pages ");
	CHECK(stat_zero == 0, "ksm_zero_pages is %ld after unmerge", stat_zero);
	printf("after unmerge: ksm_zero_pages %ld, %d failures\n", stat_zero, failures);
	return failures ? 1 : 0;
}
