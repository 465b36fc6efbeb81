// SPDX-License-Identifier: GPL-2.0
/*
 * Merge domains against the deduplication side channel (t_merge_domain.sh).
 *
 * usage: domain_probe POLICY IDENTITY [then POLICY2]
 *   (as root, uksm loaded with merge_domain=POLICY)
 *
 * Two processes, a victim and an attacker. IDENTITY says who they are: `users`: the
 * victim runs as uid 1001 and the attacker as uid 1000, both in the cgroup the test runs
 * in; `cgroups`: both run as uid 1000, the victim in memory cgroup /sys/fs/cgroup/uksm-v
 * and the attacker in /sys/fs/cgroup/uksm-a. Their pages may be merged with each other
 * under `global`, under `uid` only for `cgroups`, under `cgroup` only for `users`.
 *
 * Each holds 2 N contents the other holds too (the victim's "secrets" and "secrets2"; the
 * attacker's "probes" and "copies", of the same contents), and N contents twice within
 * itself ("own" pairs); the attacker also holds N contents nobody else has ("controls").
 *
 * The parent (root, reading both processes' /proc/PID/pagemap) waits until every own pair
 * of both shares a frame, which shows that uksm merges in both; after two more passes it
 * counts the secrets that share a frame with the probe of the same content: 95 % of them
 * where the policy allows it, none otherwise. Then the attacker, as itself, writes one
 * byte to each probe and each control page, times each write with the TSC and counts its
 * minor faults: a write to a merged page faults and copies, a write to a page of its own
 * does not fault. Medians and fault counts are printed; where merging is allowed probes
 * must fault and be at least 10 times slower than controls (a copy-on-write fault against
 * a store), otherwise they must not fault and be within 3 times of the controls.
 *
 * With "then POLICY2", the parent then writes POLICY2 to merge_domain: secrets2 must share
 * no frame with the copies as soon as the write returns if POLICY2 forbids it, the own
 * pairs must merge again, and after two more passes the same check as before holds for
 * secrets2 and copies under POLICY2.
 */
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <x86intrin.h>
#include "vmtest.h"

#define N 64

struct shared {
	volatile int stage;		/* 1: both filled, 2: probe now, 3: probed */
	volatile int filled;
	char *secrets, *secrets2, *probes, *copies, *controls, *own_v, *own_a;
	uint64_t probe_median, control_median;
	long probe_faults, control_faults;
};

static struct shared *sh;

/* Page i of a content family: distinct for every (family, i), never all zeros. */
static void fill(char *p, int family, int i)
{
	uint64_t *w = (uint64_t *)p;
	size_t k;

	for (k = 0; k < PAGE / 8; k++)
		w[k] = (uint64_t)family << 48 ^ (uint64_t)i << 32 ^ k * 0x9E3779B97F4A7C15ULL;
}

static char *region(size_t pages)
{
	char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

static void join_cgroup(const char *name)
{
	char path[128], pid[32];

	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/cgroup.procs", name);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	write_file(path, pid);
}

static void become(uid_t uid)
{
	if (setgid(uid) || setuid(uid)) {
		perror("setuid");
		exit(2);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Writes one byte to each of n pages at p; returns the median TSC ticks, counts faults. */
static uint64_t probe(char *p, long *faults)
{
	uint64_t t[N];
	struct rusage r0, r1;
	int i;

	getrusage(RUSAGE_SELF, &r0);
	for (i = 0; i < N; i++) {
		uint64_t a = __rdtsc();

		p[i * PAGE] ^= 1;
		t[i] = __rdtsc() - a;
	}
	getrusage(RUSAGE_SELF, &r1);
	*faults = r1.ru_minflt - r0.ru_minflt;
	qsort(t, N, sizeof(t[0]), cmp_u64);
	return t[N / 2];
}

static int by_cgroup;	/* IDENTITY is `cgroups` */

static void victim(void)
{
	int i;

	if (by_cgroup)
		join_cgroup("uksm-v");
	become(by_cgroup ? 1000 : 1001);
	sh->secrets = region(N);
	sh->secrets2 = region(N);
	sh->own_v = region(2 * N);
	for (i = 0; i < N; i++) {
		fill(sh->secrets + i * PAGE, 1, i);
		fill(sh->secrets2 + i * PAGE, 5, i);
		fill(sh->own_v + i * PAGE, 2, i);
		fill(sh->own_v + (N + i) * PAGE, 2, i);
	}
	__sync_fetch_and_add(&sh->filled, 1);
	for (;;)
		pause();
}

static void attacker(void)
{
	int i;

	if (by_cgroup)
		join_cgroup("uksm-a");
	become(1000);
	sh->probes = region(N);
	sh->copies = region(N);
	sh->controls = region(N);
	sh->own_a = region(2 * N);
	for (i = 0; i < N; i++) {
		fill(sh->probes + i * PAGE, 1, i);
		fill(sh->copies + i * PAGE, 5, i);
		fill(sh->controls + i * PAGE, 3, i);
		fill(sh->own_a + i * PAGE, 4, i);
		fill(sh->own_a + (N + i) * PAGE, 4, i);
	}
	__sync_fetch_and_add(&sh->filled, 1);
	while (sh->stage < 2)
		usleep(10000);
	sh->probe_median = probe(sh->probes, &sh->probe_faults);
	sh->control_median = probe(sh->controls, &sh->control_faults);
	sh->stage = 3;
	for (;;)
		pause();
}

/* Pairs (a page of pid_a at a, of pid_b at b, page by page) that share a frame. */
static int shared_frames(pid_t pa, char *a, pid_t pb, char *b, int n)
{
	int i, k = 0;

	for (i = 0; i < n; i++) {
		uint64_t fa = pfn(pa, a + i * PAGE);

		k += fa && fa == pfn(pb, b + i * PAGE);
	}
	return k;
}

static int own_merged(pid_t v, pid_t a)
{
	return shared_frames(v, sh->own_v, v, sh->own_v + N * PAGE, N) +
	       shared_frames(a, sh->own_a, a, sh->own_a + N * PAGE, N);
}

/* Waits until every own pair of both shares a frame; returns the seconds it took. */
static double wait_own(pid_t v, pid_t a)
{
	double t0 = now_s();

	while (own_merged(v, a) < 2 * N) {
		if (now_s() - t0 > 600) {
			CHECK(0, "own pairs not merged in 600 s (%d of %d)", own_merged(v, a), 2 * N);
			break;
		}
		usleep(200000);
	}
	return now_s() - t0;
}

/* Whether POLICY lets the two processes' pages merge. */
static int allowed(const char *policy)
{
	return !strcmp(policy, "global") || !strcmp(policy, by_cgroup ? "uid" : "cgroup");
}

/* Checks the victim's `secrets` against the attacker's `pages` after two more passes. */
static void check_cross(const char *policy, pid_t v, char *secrets, pid_t a, char *pages,
			const char *what)
{
	int cross, i;

	wait_passes(2);
	cross = shared_frames(v, secrets, a, pages, N);
	for (i = 0; allowed(policy) && cross < N * 95 / 100 && i < 3000; i++) {
		usleep(200000);
		cross = shared_frames(v, secrets, a, pages, N);
	}
	printf("%s: secrets sharing a frame with the attacker's %s: %d of %d\n", policy, what,
	       cross, N);
	if (allowed(policy))
		CHECK(cross >= N * 95 / 100, "%s: only %d of %d secrets merged with %s", policy,
		      cross, N, what);
	else
		CHECK(cross == 0, "%s: %d secrets merged with %s across domains", policy, cross,
		      what);
}

int main(int argc, char **argv)
{
	const char *policy = argc > 2 ? argv[1] : NULL;
	const char *then = argc > 4 && !strcmp(argv[3], "then") ? argv[4] : NULL;
	char line[64];
	pid_t v, a;
	int i;

	if (!policy || (strcmp(argv[2], "users") && strcmp(argv[2], "cgroups"))) {
		fprintf(stderr, "usage: domain_probe POLICY users|cgroups [then POLICY2]\n");
		return 2;
	}
	by_cgroup = !strcmp(argv[2], "cgroups");
	setvbuf(stdout, NULL, _IONBF, 0);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	v = fork();
	if (!v)
		victim();
	a = fork();
	if (!a)
		attacker();
	for (i = 0; sh->filled < 2 && i < 3000; i++)
		usleep(10000);
	CHECK(sh->filled == 2, "processes did not fill their pages");

	printf("%s, %s: own pairs merged after %.1f s\n", policy, argv[2], wait_own(v, a));
	check_cross(policy, v, sh->secrets, a, sh->probes, "probes");

	sh->stage = 2;
	for (i = 0; sh->stage < 3 && i < 3000; i++)
		usleep(10000);
	printf("%s: attacker's write latency, median TSC ticks: probe %llu, control %llu (x%.1f); faults: probe %ld, control %ld of %d\n",
	       policy, (unsigned long long)sh->probe_median, (unsigned long long)sh->control_median,
	       (double)sh->probe_median / (sh->control_median ? sh->control_median : 1),
	       sh->probe_faults, sh->control_faults, N);
	CHECK(sh->control_faults == 0, "%s: writes to the attacker's own controls faulted", policy);
	if (allowed(policy)) {
		CHECK(sh->probe_faults >= N * 95 / 100, "%s: probes did not fault", policy);
		CHECK(sh->probe_median >= 10 * sh->control_median,
		      "%s: probes not 10 times slower than controls", policy);
	} else {
		CHECK(sh->probe_faults == 0, "%s: probes faulted", policy);
		CHECK(sh->probe_median <= 3 * sh->control_median,
		      "%s: probes more than 3 times slower than controls", policy);
	}

	if (then) {
		int cross = shared_frames(v, sh->secrets2, a, sh->copies, N);

		printf("%s: secrets2 sharing a frame with copies before the change: %d of %d\n",
		       policy, cross, N);
		if (allowed(policy))
			CHECK(cross >= N * 95 / 100, "%s: only %d secrets2 merged with copies",
			      policy, cross);
		snprintf(line, sizeof(line), "%s\n", then);
		write_file("/sys/kernel/mm/uksm/merge_domain", line);
		cross = shared_frames(v, sh->secrets2, a, sh->copies, N);
		printf("%s -> %s: secrets2 sharing a frame with copies right after the change: %d of %d\n",
		       policy, then, cross, N);
		if (!allowed(then))
			CHECK(cross == 0, "%s -> %s: %d secrets still merged with copies", policy,
			      then, cross);
		printf("%s: own pairs merged again after %.1f s\n", then, wait_own(v, a));
		check_cross(then, v, sh->secrets2, a, sh->copies, "copies");
	}
	kill(v, SIGKILL);
	kill(a, SIGKILL);
	waitpid(v, NULL, 0);
	waitpid(a, NULL, 0);
	printf("%s\n", failures ? "domain_probe: FAILED" : "domain_probe: ok");
	return failures ? 1 : 0;
}
