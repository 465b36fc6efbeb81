/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the VM test programs: checks that count failures, frames from
 * /proc/PID/pagemap (as root), /proc and sysfs fields, uksm's run switch and passes.
 */
#ifndef UKSM_VMTEST_H
#define UKSM_VMTEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

/* Seconds of CLOCK_MONOTONIC. */
static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int failures;

#define CHECK(cond, ...)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			printf("FAIL: " __VA_ARGS__);                                      \
			printf("\n");                                                      \
			failures++;                                                        \
		}                                                                          \
	} while (0)

/* pagemap files stay open (a few per program): thousands of look-ups per check. */
static struct {
	pid_t pid;
	int fd;
} pagemaps[8];

static inline uint64_t pagemap_entry(pid_t pid, const void *addr)
{
	char path[64];
	uint64_t e = 0;
	int i, fd = -1;

	for (i = 0; i < 8 && pagemaps[i].pid; i++)
		if (pagemaps[i].pid == pid)
			fd = pagemaps[i].fd;
	if (fd < 0 && i < 8) {
		snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
		fd = open(path, O_RDONLY);
		pagemaps[i].pid = pid;
		pagemaps[i].fd = fd;
	}
	if (fd < 0 || pread(fd, &e, 8, (off_t)((uintptr_t)addr / PAGE * 8)) != 8)
		e = 0;
	return e;
}

/* The frame mapped at addr of pid, or 0 if none. */
static inline uint64_t pfn(pid_t pid, const void *addr)
{
	uint64_t e = pagemap_entry(pid, addr);

	return (e >> 63) & 1 ? e & ((1ULL << 55) - 1) : 0;
}

/* The number after key at the start of a line of file (key "" for a one-number file). */
static inline long status_field(const char *file, const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen(file, "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key));
	if (f)
		fclose(f);
	return v;
}

static inline void write_file(const char *file, const char *v)
{
	int fd = open(file, O_WRONLY);

	if (fd < 0 || write(fd, v, strlen(v)) != (ssize_t)strlen(v))
		CHECK(0, "cannot write %s to %s", v, file);
	if (fd >= 0)
		close(fd);
}

static inline void set_run(const char *v)
{
	write_file("/sys/kernel/mm/uksm/run", v);
}

/* Waits until uksm has completed n more passes over everything (at most 120 s). */
static inline void wait_passes(long n)
{
	long start = status_field("/sys/kernel/mm/uksm/full_scans", ""), t;

	for (t = 0; t < 1200; t++) {
		if (status_field("/sys/kernel/mm/uksm/full_scans", "") >= start + n)
			return;
		usleep(100000);
	}
	CHECK(0, "uksm did not complete %ld passes in 120 s", n);
}

#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101
#endif

/*
 * Soft-offlines the page at addr (a migration to a new frame). EBUSY is transient: the
 * kernel gives up migrating a page after ten quick tries if something else holds a
 * reference to it meanwhile (uksmd looks at every merged folio once a pass, and passes
 * follow each other at once with sleep_millisecs=0), so up to 20 tries, 50 ms apart.
 * Returns madvise's last result; *tries tells how many were made.
 */
static inline int soft_offline(void *addr, int *tries)
{
	int r;

	for (*tries = 1;; ++*tries) {
		r = madvise(addr, PAGE, MADV_SOFT_OFFLINE);
		if (r == 0 || errno != EBUSY || *tries == 20)
			return r;
		usleep(50000);
	}
}

#ifdef VMTEST_SIGBUS
/* Memory failure seen from a process: early kills and SIGBUS on access. */
#include <setjmp.h>
#include <signal.h>

#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif
#ifndef BUS_MCEERR_AR
#define BUS_MCEERR_AR 4
#define BUS_MCEERR_AO 5
#endif

static sigjmp_buf jump;
static volatile sig_atomic_t bus_code, early_code;
static volatile int probing;

/* SIGBUS handler: records an early kill (asynchronous), or ends a probe. */
static void on_bus(int sig, siginfo_t *si, void *uc)
{
	if (!probing) {
		early_code = si->si_code;
		return;
	}
	bus_code = si->si_code;
	siglongjmp(jump, 1);
}

/* Reads the page at p: 0 if readable, else the SIGBUS code. */
static int probe(volatile const char *p)
{
	bus_code = 0;
	probing = 1;
	if (!sigsetjmp(jump, 1))
		(void)p[0];
	probing = 0;
	return bus_code;
}
#endif /* VMTEST_SIGBUS */

#endif /* UKSM_VMTEST_H */
