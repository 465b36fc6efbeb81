// SPDX-License-Identifier: GPL-2.0
/*
 * Pages shared by fork before they are merged: every mapping must be reachable by the
 * reverse map (run as root, uksm loaded; the caller sets vm.memory_failure_early_kill=1).
 *
 *   fork_shared ROUNDS
 *
 * Each round, with uksm paused: a parent F fills a 2 MiB region (THP-backed under the
 * default THP setting) with 16 patterns and one unique page (VICTIM), and forks a child
 * C that shares every page with it; a third process T fills its own region with the same
 * contents. Then uksm runs until F's, C's and T's page i are one frame for every i
 * (/proc/PID/pagemap). Which of the three mappings uksm meets first follows the order of
 * its registry, which changes from round to round.
 *
 * Then, with uksm paused again:
 *  - F soft-offlines (MADV_SOFT_OFFLINE, a migration) pages 0..31 and C pages 32..63:
 *    every call must succeed (EBUSY retried, as a caller must), and afterwards F, C and T
 *    map one new frame for each such page: migration found every mapping;
 *  - F poisons VICTIM (MADV_HWPOISON): C and T, which map it, get an early SIGBUS
 *    (BUS_MCEERR_AO) and lose the mapping (reading gives SIGBUS BUS_MCEERR_AR): memory
 *    failure found every mapping;
 *  - every other page keeps its contents in all three.
 * Exit status 0 means every check held in every round.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>

#define VMTEST_SIGBUS
#include "vmtest.h"

#define N 512UL
#define VICTIM 100UL
#define OFFLINE_F 32
#define OFFLINE_C 64


static uint64_t word(size_t page, size_t w, int round)
{
	uint64_t pattern = page == VICTIM ? 1000 + (uint64_t)round : page % 16;

	return (0x666f726b73686172ULL ^ (0x9e3779b97f4a7c15ULL * (pattern + 1))) + w;
}

static void fill(char *p, int round)
{
	size_t i, w;

	for (i = 0; i < N; i++)
		for (w = 0; w < PAGE / 8; w++)
			((uint64_t *)(p + i * PAGE))[w] = word(i, w, round);
}

/* Pages other than VICTIM (and VICTIM too, unless poisoned) hold their contents. */
static int intact(const char *p, int round, int poisoned)
{
	size_t i, w;

	for (i = 0; i < N; i++) {
		if (poisoned && i == VICTIM)
			continue;
		for (w = 0; w < PAGE / 8; w++)
			if (((const uint64_t *)(p + i * PAGE))[w] != word(i, w, round))
				return 0;
	}
	return 1;
}

struct cmd {
	char op;
	int lo, hi;
};

struct worker {
	pid_t pid;
	int cmd, rep;
	char *region;
};

/* A worker's loop: executes commands on its region, answers each with a number. */
static void serve(char *region, int round, int cmd, int rep)
{
	struct sigaction sa = { .sa_sigaction = on_bus, .sa_flags = SA_SIGINFO | SA_RESTART };
	struct cmd c;
	int poisoned = 0;

	sigaction(SIGBUS, &sa, NULL);
	while (read(cmd, &c, sizeof(c)) == sizeof(c)) {
		long r = 0;
		int i, tries, t;

		switch (c.op) {
		case 'o':	/* soft offline: how many calls failed */
			for (i = c.lo; i < c.hi; i++)
				r += soft_offline(region + i * PAGE, &tries) != 0;
			break;
		case 'p':
			r = madvise(region + VICTIM * PAGE, PAGE, MADV_HWPOISON) ? errno : 0;
			poisoned = 1;
			break;
		case 'e':	/* early kill code, waiting up to 5 s for it */
			for (t = 0; t < 50 && !early_code; t++)
				usleep(100000);
			r = early_code;
			poisoned = 1;
			break;
		case 'r':
			r = probe(region + VICTIM * PAGE);
			break;
		case 'c':
			r = intact(region, round, poisoned);
			break;
		case 'x':
			_exit(0);
		}
		if (write(rep, &r, sizeof(r)) != sizeof(r))
			_exit(2);
	}
	_exit(0);
}

static long ask(struct worker *w, char op, int lo, int hi)
{
	struct cmd c = { op, lo, hi };
	long r = -1;

	if (write(w->cmd, &c, sizeof(c)) != sizeof(c) || read(w->rep, &r, sizeof(r)) != sizeof(r))
		CHECK(0, "worker %d did not answer '%c'", (int)w->pid, op);
	return r;
}

/* Starts a worker: F (which forks C into *child) or T. */
static void start(struct worker *w, struct worker *child, int round)
{
	int cmd[2], rep[2], ccmd[2], crep[2];

	if (pipe(cmd) || pipe(rep) || (child && (pipe(ccmd) || pipe(crep))))
		exit(2);
	w->pid = fork();
	if (w->pid == 0) {
		char *p = mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			_exit(2);
		fill(p, round);
		if (child) {
			pid_t c = fork();

			if (c == 0)
				serve(p, round, ccmd[0], crep[1]);
			if (write(rep[1], &c, sizeof(c)) != sizeof(c))
				_exit(2);
		}
		if (write(rep[1], &p, sizeof(p)) != sizeof(p))
			_exit(2);
		serve(p, round, cmd[0], rep[1]);
	}
	w->cmd = cmd[1];
	w->rep = rep[0];
	if (child) {
		child->cmd = ccmd[1];
		child->rep = crep[0];
		if (read(w->rep, &child->pid, sizeof(child->pid)) != sizeof(child->pid))
			exit(2);
	}
	if (read(w->rep, &w->region, sizeof(w->region)) != sizeof(w->region))
		exit(2);
	if (child)
		child->region = w->region;
}

/* Pages i in [lo, hi) whose frame is the same in F, C and T (and not 0). */
static size_t one_frame(struct worker *w, size_t lo, size_t hi)
{
	size_t i, n = 0;

	for (i = lo; i < hi; i++) {
		uint64_t f = pfn(w[0].pid, w[0].region + i * PAGE);

		n += f && f == pfn(w[1].pid, w[1].region + i * PAGE) &&
		     f == pfn(w[2].pid, w[2].region + i * PAGE);
	}
	return n;
}

static void round_of(int round)
{
	struct worker w[3];	/* F, C, T */
	uint64_t before[OFFLINE_C];
	size_t i, n = 0, moved = 0;
	long r;
	int t;

	set_run("0");
	start(&w[0], &w[1], round);
	start(&w[2], NULL, round);
	for (i = 0; i < N; i++)
		n += pfn(w[0].pid, w[0].region + i * PAGE) == pfn(w[1].pid, w[1].region + i * PAGE);
	CHECK(n == N, "round %d: F and C share only %zu of %lu pages after fork", round, n, N);
	set_run("1");
	for (t = 0, n = 0; t < 1200 && n < N; t++) {
		usleep(100000);
		n = one_frame(w, 0, N);
	}
	set_run("0");
	printf("round %d: %zu of %lu pages one frame in F, C and T after %d.%d s\n", round, n, N,
	       t / 10, t % 10);
	CHECK(n == N, "round %d: pages not merged", round);

	for (i = 0; i < OFFLINE_C; i++)
		before[i] = pfn(w[0].pid, w[0].region + i * PAGE);
	r = ask(&w[0], 'o', 0, OFFLINE_F);
	CHECK(r == 0, "round %d: %ld soft offlines from F failed", round, r);
	r = ask(&w[1], 'o', OFFLINE_F, OFFLINE_C);
	CHECK(r == 0, "round %d: %ld soft offlines from C failed", round, r);
	for (i = 0; i < OFFLINE_C; i++)
		moved += pfn(w[0].pid, w[0].region + i * PAGE) != before[i];
	n = one_frame(w, 0, OFFLINE_C);
	printf("round %d: soft offline moved %zu of %d pages; %zu are one frame in F, C and T\n",
	       round, moved, OFFLINE_C, n);
	CHECK(moved == OFFLINE_C && n == OFFLINE_C,
	      "round %d: a migration left a mapping behind", round);

	r = ask(&w[0], 'p', 0, 0);
	CHECK(r == 0, "round %d: MADV_HWPOISON failed: %ld", round, r);
	for (i = 1; i < 3; i++) {
		long early = ask(&w[i], 'e', 0, 0), read_code = ask(&w[i], 'r', 0, 0);

		printf("round %d: %s: early SIGBUS code %ld, reading the page: SIGBUS code %ld\n",
		       round, i == 1 ? "C" : "T", early, read_code);
		CHECK(early == BUS_MCEERR_AO, "round %d: %s got no early kill: not found",
		      round, i == 1 ? "C" : "T");
		CHECK(read_code == BUS_MCEERR_AR, "round %d: %s could read the poisoned page",
		      round, i == 1 ? "C" : "T");
	}
	r = ask(&w[0], 'r', 0, 0);
	CHECK(r == BUS_MCEERR_AR, "round %d: F could read the poisoned page (%ld)", round, r);
	for (i = 0; i < 3; i++)
		CHECK(ask(&w[i], 'c', 0, 0) == 1, "round %d: contents changed in worker %zu",
		      round, i);
	for (i = 0; i < 3; i++) {
		struct cmd x = { 'x', 0, 0 };

		if (write(w[i].cmd, &x, sizeof(x)) != sizeof(x))
			CHECK(0, "worker %d gone", (int)w[i].pid);
		close(w[i].cmd);
		close(w[i].rep);
	}
	while (wait(NULL) > 0)
		;
	for (i = 0; i < 8 && pagemaps[i].pid; i++)
		close(pagemaps[i].fd);
	memset(pagemaps, 0, sizeof(pagemaps));
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 6, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (r = 0; r < rounds; r++)
		round_of(r);
	set_run("1");
	printf("fork_shared: %d failures\n", failures);
	return failures ? 1 : 0;
}
