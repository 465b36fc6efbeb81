// SPDX-License-Identifier: GPL-2.0
/*
 * The adaptive hash strength (t_hash_strength.sh).
 *
 * hash_strength SECONDS
 *
 * Maps 64 copies of one page X and 8192 "near duplicates": pages equal to one base page
 * except for one word each, at a different place in each. The partial hash reads only
 * some words of a page, so most near duplicates collide: uksmd hashes them in full and
 * compares them only to find them different, wasted work that must make it raise
 * hash_strength. Then (within SECONDS each):
 *  - the 64 copies of X are merged onto one frame;
 *  - hash_strength rises above its initial value;
 *  - 64 more copies of X, written after the change, are merged onto that same frame:
 *    the merged page is still found in the stable tree under the new strength;
 *  - every page holds what was written.
 * Output: "initial strength N", "merged X", "strength N after S s", "new copies joined",
 * or "FAIL: ...".
 */
#include "vmtest.h"

#define COPIES 64
#define NEAR 8192
#define WORDS 1024

static void fill_x(uint32_t *p)
{
	int i;

	for (i = 0; i < WORDS; i++)
		p[i] = 0x5eed0000u + i * 7u;
}

/* Whether all COPIES pages at p map frame f (f = 0: the frame of the first one). */
static uint64_t one_frame(const char *p, uint64_t f)
{
	int i;

	if (!f)
		f = pfn(getpid(), p);
	for (i = 0; i < COPIES; i++)
		if (!f || pfn(getpid(), p + i * PAGE) != f)
			return 0;
	return f;
}

static int x_intact(const char *p)
{
	uint32_t want[WORDS];
	int i;

	fill_x(want);
	for (i = 0; i < COPIES; i++)
		if (memcmp(p + i * PAGE, want, PAGE))
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	const char *strength_file = "/sys/kernel/mm/uksm/hash_strength";
	char *x1, *x2, *near;
	long initial, s = -1;
	uint64_t frame = 0;
	double t0;
	int secs, i, j;

	if (argc != 2)
		return 2;
	secs = atoi(argv[1]);
	initial = status_field(strength_file, "");
	printf("initial strength %ld\n", initial);
	x1 = mmap(NULL, COPIES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	x2 = mmap(NULL, COPIES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	near = mmap(NULL, NEAR * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(x1 != MAP_FAILED && x2 != MAP_FAILED && near != MAP_FAILED, "mmap: %s", strerror(errno));
	if (failures)
		return 1;
	for (i = 0; i < COPIES; i++)
		fill_x((uint32_t *)(x1 + i * PAGE));
	for (i = 0; i < NEAR; i++) {
		uint32_t *w = (uint32_t *)(near + (size_t)i * PAGE);

		for (j = 0; j < WORDS; j++)
			w[j] = 0xa5a50000u + j;
		/* A different word of each page differs, by a different value. */
		w[(i * 523) % WORDS] ^= 0x80000000u | (uint32_t)i;
	}
	fflush(stdout);

	for (t0 = now_s(); now_s() - t0 < secs && !(frame = one_frame(x1, 0));)
		usleep(200000);
	CHECK(frame, "the %d copies of X not merged onto one frame in %d s", COPIES, secs);
	if (failures)
		return 1;
	printf("merged X\n");
	fflush(stdout);

	for (t0 = now_s(); now_s() - t0 < secs; usleep(200000)) {
		s = status_field(strength_file, "");
		if (s > initial)
			break;
	}
	CHECK(s > initial, "hash_strength %ld, not above %ld, after %d s of colliding pages", s, initial,
	      secs);
	if (failures)
		return 1;
	printf("strength %ld after %.1f s\n", s, now_s() - t0);
	fflush(stdout);

	for (i = 0; i < COPIES; i++)
		fill_x((uint32_t *)(x2 + i * PAGE));
	for (t0 = now_s(); now_s() - t0 < secs && !one_frame(x2, frame);)
		usleep(200000);
	CHECK(one_frame(x2, frame), "new copies of X not merged onto X's frame in %d s (strength now %ld)",
	      secs, status_field(strength_file, ""));
	CHECK(one_frame(x1, frame), "the first copies of X left their frame");
	CHECK(x_intact(x1) && x_intact(x2), "copies of X changed");
	for (i = 0; i < NEAR; i++) {
		uint32_t *w = (uint32_t *)(near + (size_t)i * PAGE);

		for (j = 0; j < WORDS; j++) {
			uint32_t want = 0xa5a50000u + j;

			if (j == (i * 523) % WORDS)
				want ^= 0x80000000u | (uint32_t)i;
			if (w[j] != want) {
				CHECK(0, "near duplicate %d word %d changed", i, j);
				i = NEAR;
				break;
			}
		}
	}
	if (!failures)
		printf("new copies joined, strength %ld\n", status_field(strength_file, ""));
	return failures ? 1 : 0;
}
