// SPDX-License-Identifier: GPL-2.0
/*
 * Torture workload: random address-space operations over memory full of duplicates,
 * zeros and huge pages, every byte checked (run as root; t_torture.sh drives uksm,
 * compaction and swap around it).
 *
 *   torture SECONDS PROCS SEED
 *
 * PROCS workers each keep up to 12 regions. Every page of a region holds one of 32
 * patterns shared by all workers (so there are duplicates everywhere) or zeros; a tag
 * per page records which, so every byte has a known expected value. Workers pick at
 * random: mmap (some regions 2 MiB-aligned MADV_HUGEPAGE), munmap, mremap (moving and
 * growing), mprotect (read-only and back), madvise (DONTNEED, HUGEPAGE, NOHUGEPAGE,
 * UNMERGEABLE, MERGEABLE, PAGEOUT, COLD, SOFT_OFFLINE), fork (the child checks and
 * writes its copy, then exits; the parent's stays as it was), writes of whole pages and
 * of single words, and full checks of a region. Every region is checked before it is
 * unmapped and at the end.
 *
 * Prints per worker and in total: operations, forks, soft offlines that succeeded
 * (migrations), pages written and bytes checked. Exit status 0 means no byte ever
 * differed and every worker finished.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "vmtest.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif

#define REGIONS 12
#define MAX_PAGES 1024UL
#define HPAGE (2UL << 20)

struct region {
	char *p;
	size_t pages;
	unsigned char *tag;	/* 0: zeros, 1..32: pattern */
	int readonly;
};

struct stats {
	unsigned long ops, forks, offlined, written, checked;
};

static struct region reg[REGIONS];
static struct stats st;
static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t word(unsigned tag, size_t w)
{
	return tag ? (0x746f727475726500ULL + tag) * 0x9e3779b97f4a7c15ULL + w : 0;
}

static void put(struct region *r, size_t i, unsigned tag)
{
	uint64_t *q = (uint64_t *)(r->p + i * PAGE);
	size_t w;

	for (w = 0; w < PAGE / 8; w++)
		q[w] = word(tag, w);
	r->tag[i] = (unsigned char)tag;
	st.written++;
}

/* Checks pages [lo, hi) of r; exits on a difference. */
static void check(struct region *r, size_t lo, size_t hi, const char *when)
{
	size_t i, w;

	for (i = lo; i < hi; i++) {
		const uint64_t *q = (const uint64_t *)(r->p + i * PAGE);

		for (w = 0; w < PAGE / 8; w++)
			if (q[w] != word(r->tag[i], w)) {
				printf("FAIL: pid %d %s: page %zu of region %p word %zu is %#llx, expected %#llx (tag %u)\n",
				       (int)getpid(), when, i, (void *)r->p, w,
				       (unsigned long long)q[w],
				       (unsigned long long)word(r->tag[i], w), r->tag[i]);
				exit(1);
			}
		st.checked += PAGE;
	}
}

static unsigned random_tag(void)
{
	return rnd() % 4 == 0 ? 0 : 1 + rnd() % 32;
}

static void new_region(struct region *r)
{
	size_t i, len;
	int huge = rnd() % 3 == 0;
	char *p;

	r->pages = huge ? HPAGE / PAGE * (1 + rnd() % 2) : 1 + rnd() % MAX_PAGES;
	len = r->pages * PAGE;
	p = mmap(NULL, len + (huge ? HPAGE : 0), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		r->p = NULL;
		return;
	}
	if (huge) {
		char *a = (char *)(((uintptr_t)p + HPAGE - 1) & ~(HPAGE - 1));

		if (a > p)
			munmap(p, a - p);
		munmap(a + len, p + HPAGE - a);
		p = a;
		madvise(p, len, MADV_HUGEPAGE);
	}
	r->p = p;
	r->tag = calloc(r->pages, 1);
	r->readonly = 0;
	/* Runs of one tag: whole huge pages of zeros or of one pattern happen. */
	for (i = 0; i < r->pages;) {
		unsigned tag = random_tag();
		size_t run = 1 + rnd() % 600;

		for (; run && i < r->pages; run--, i++)
			put(r, i, tag);
	}
}

static void drop_region(struct region *r)
{
	check(r, 0, r->pages, "before munmap");
	munmap(r->p, r->pages * PAGE);
	free(r->tag);
	r->p = NULL;
}

static void writable(struct region *r)
{
	if (r->readonly) {
		mprotect(r->p, r->pages * PAGE, PROT_READ | PROT_WRITE);
		r->readonly = 0;
	}
}

/* One random operation on region r. */
static void operate(struct region *r)
{
	size_t i = rnd() % r->pages, n = 1 + rnd() % (r->pages - i), k;
	static const int advice[] = { MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_UNMERGEABLE,
				      MADV_MERGEABLE, MADV_PAGEOUT, MADV_COLD };
	int tries;

	switch (rnd() % 12) {
	case 0:
		drop_region(r);
		break;
	case 1: {		/* mremap: move, and sometimes grow (new pages are zeros) */
		size_t grow = rnd() % 2 ? rnd() % 64 : 0;
		char *q;

		check(r, 0, r->pages, "before mremap");
		q = mremap(r->p, r->pages * PAGE, (r->pages + grow) * PAGE, MREMAP_MAYMOVE);
		if (q == MAP_FAILED)
			break;
		r->p = q;
		if (grow) {
			r->tag = realloc(r->tag, r->pages + grow);
			memset(r->tag + r->pages, 0, grow);
			r->pages += grow;
		}
		check(r, 0, r->pages, "after mremap");
		break;
	}
	case 2:
		if (r->readonly) {
			writable(r);
		} else {
			mprotect(r->p, r->pages * PAGE, PROT_READ);
			r->readonly = 1;
		}
		break;
	case 3:
		madvise(r->p + i * PAGE, n * PAGE, MADV_DONTNEED);
		memset(r->tag + i, 0, n);
		break;
	case 4:
		madvise(r->p + i * PAGE, n * PAGE, advice[rnd() % 6]);
		break;
	case 5:
		if (soft_offline(r->p + i * PAGE, &tries) == 0)
			st.offlined++;
		check(r, i, i + 1, "after soft offline");
		break;
	case 6:
	case 7:
		writable(r);
		for (k = 0; k < n && k < 64; k++)
			put(r, i + k, random_tag());
		break;
	case 8:		/* a single word: the page no longer matches any pattern... */
		writable(r);
		((volatile uint64_t *)(r->p + i * PAGE))[rnd() % (PAGE / 8)] ^= 1;
		/* ...until written back, which is what is checked */
		((volatile uint64_t *)(r->p + i * PAGE))[0] = word(r->tag[i], 0);
		put(r, i, r->tag[i]);
		break;
	default:
		check(r, 0, r->pages, "check");
		break;
	}
}

static void report(const char *who)
{
	printf("%s %d: %lu ops, %lu forks, %lu soft offlines, %lu pages written, %lu MiB checked\n",
	       who, (int)getpid(), st.ops, st.forks, st.offlined, st.written,
	       st.checked >> 20);
}

static int worker(int seconds, uint64_t seed)
{
	time_t end = time(NULL) + seconds;
	int k, status;

	rng = seed | 1;
	while (time(NULL) < end) {
		struct region *r = &reg[rnd() % REGIONS];

		st.ops++;
		if (!r->p) {
			new_region(r);
			continue;
		}
		if (rnd() % 40 == 0) {		/* fork */
			pid_t c = fork();

			if (c == 0) {
				int ops;

				for (k = 0; k < REGIONS; k++)
					if (reg[k].p)
						check(&reg[k], 0, reg[k].pages, "child after fork");
				for (ops = 0; ops < 20; ops++) {
					struct region *cr = &reg[rnd() % REGIONS];

					if (cr->p)
						operate(cr);
				}
				for (k = 0; k < REGIONS; k++)
					if (reg[k].p)
						check(&reg[k], 0, reg[k].pages, "child at exit");
				_exit(0);
			}
			if (c > 0) {
				st.forks++;
				rnd();	/* parent and child diverge */
				if (waitpid(c, &status, 0) != c || !WIFEXITED(status) ||
				    WEXITSTATUS(status)) {
					printf("FAIL: child of %d failed\n", (int)getpid());
					return 1;
				}
			}
			continue;
		}
		operate(r);
	}
	for (k = 0; k < REGIONS; k++)
		if (reg[k].p)
			check(&reg[k], 0, reg[k].pages, "at the end");
	report("worker");
	printf("TOTALS %lu %lu %lu %lu %lu\n", st.ops, st.forks, st.offlined, st.written,
	       st.checked);
	return 0;
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 60, procs = argc > 2 ? atoi(argv[2]) : 4;
	uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : (uint64_t)time(NULL);
	int k, status, bad = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("torture: %d s, %d workers, seed %llu\n", seconds, procs, (unsigned long long)seed);
	for (k = 0; k < procs; k++)
		if (fork() == 0)
			_exit(worker(seconds, seed * 7919 + (uint64_t)k * 104729));
	for (k = 0; k < procs; k++)
		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			bad++;
	printf("torture: %d of %d workers failed\n", bad, procs);
	return bad ? 1 : 0;
}
