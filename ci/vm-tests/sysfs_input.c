// SPDX-License-Identifier: GPL-2.0
/*
 * Every writable file in /sys/kernel/mm/uksm/ must refuse bad input with EINVAL and keep
 * its value; read-only files must refuse writes. Good input must be taken.
 *
 *   sysfs_input   (uksm loaded)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DIR_ "/sys/kernel/mm/uksm/"

static int failures;

static void read_value(const char *name, char *buf, size_t size)
{
	char path[128];
	int fd, n;

	snprintf(path, sizeof(path), DIR_ "%s", name);
	fd = open(path, O_RDONLY);
	n = fd < 0 ? -1 : (int)read(fd, buf, size - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
}

/* One write() of exactly len bytes; returns 0 or errno. */
static int write_value(const char *name, const char *data, size_t len)
{
	char path[128];
	int fd, err = 0;

	snprintf(path, sizeof(path), DIR_ "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return errno;
	if (write(fd, data, len) != (ssize_t)len)
		err = errno ? errno : EIO;
	close(fd);
	return err;
}

static void expect_refused(const char *name, const char *data, size_t len, int want)
{
	char before[64], after[64];
	int err;

	read_value(name, before, sizeof(before));
	errno = 0;
	err = write_value(name, data, len);
	read_value(name, after, sizeof(after));
	if ((want ? err != want : err == 0) || strcmp(before, after)) {
		printf("FAIL %s <- %zu bytes \"%.*s\": error %d (%s), value %s -> %s\n", name, len,
		       (int)(len > 40 ? 40 : len), data, err, strerror(err), before, after);
		failures++;
	}
}

static void expect_taken(const char *name, const char *data, const char *want)
{
	char after[64];
	int err = write_value(name, data, strlen(data));

	read_value(name, after, sizeof(after));
	if (err || strcmp(after, want)) {
		printf("FAIL %s <- \"%s\": error %d, reads %s", name, data, err, after);
		failures++;
	}
}

static void expect_reads(const char *name, const char *want)
{
	char now[64];

	read_value(name, now, sizeof(now));
	if (strcmp(now, want)) {
		printf("FAIL %s reads %s, not %s", name, now, want);
		failures++;
	}
}

int main(void)
{
	static const char *writable[] = { "run", "sleep_millisecs", "stats_interval_secs",
					  "pages_to_scan", "use_zero_pages", "max_page_sharing",
					  "max_cpu_percentage", "abundant_threshold", "thrash_threshold" };
	static const char *counters[] = { "tracked_vmas", "tracked_pages", "full_scans",
					  "pages_scanned", "pages_shared", "pages_sharing",
					  "pages_unshared", "ksm_zero_pages", "registry_anomalies",
					  "ema_per_page_time", "sleep_times", "hash_strength",
					  "rung_vmas", "merges_broken", "merges_collapsed",
					  "thrash_holds" };
	static const char *bad_lists[] = { "20 40 MAX/4", "20 40 MAX/4 MAX/1 5", "20  40 MAX/4 MAX/1",
					   " 20 40 MAX/4 MAX/1", "20 40 MAX/4 MAX/1 ", "0 40 MAX/4 MAX/1",
					   "10000 40 MAX/4 MAX/1", "20 40 MAX/0 MAX/1", "20 40 MAX/101 MAX/1",
					   "20 -40 MAX/4 MAX/1", "20 40 max/4 MAX/1", "20 40 MAX/4 MAX/1\n\n",
					   "20,40,MAX/4,MAX/1", "20 40 MAX/ MAX/1", "99999999999 1 1 1", "\n" };
	static const char *bad_intervals[] = { "50 200 500 1000", "1000 500 200 5", "1000 500 200",
					       "1000 500 200 600001", "1000 500 200 -50", "a b c d" };
	static const char *bad_names[] = { "ful", "Full", "full ", " full", "full\n\n", "fast",
					   "0", "\n", "[full]", "full medium", "quiet\r" };
	static const char *bad[] = { "-1", "+1", " 1", "1 ", "abc", "1.5", "0x10", "1\n\n", "\n",
				     "1a", "99999999999999999999", "18446744073709551616",
				     "4294967296" };
	/* The first values outside each attribute's range. */
	static const char *above[] = { "3", "3600001", "86401", "1000001", "2", "1000001", "101",
				       "100", "100" };
	static const char *below[] = { NULL, NULL, NULL, "0", NULL, "1", "0", NULL, NULL };
	char overlong[200], huge[5000];
	size_t i, j;

	memset(overlong, '1', sizeof(overlong));
	memset(huge, '1', sizeof(huge));
	for (i = 0; i < sizeof(writable) / sizeof(*writable); i++) {
		const char *name = writable[i];
		char orig[64];

		read_value(name, orig, sizeof(orig));
		for (j = 0; j < sizeof(bad) / sizeof(*bad); j++)
			expect_refused(name, bad[j], strlen(bad[j]), EINVAL);
		expect_refused(name, above[i], strlen(above[i]), EINVAL);
		if (below[i])
			expect_refused(name, below[i], strlen(below[i]), EINVAL);
		expect_refused(name, overlong, sizeof(overlong), EINVAL);
		/* Beyond a page, sysfs itself refuses (E2BIG) before the module sees it. */
		expect_refused(name, huge, sizeof(huge), 0);
		expect_refused(name, "1\0", 2, EINVAL);
		/* A zero-length write changes nothing. */
		write_value(name, "", 0);
		expect_taken(name, orig, orig);
	}
	expect_taken("sleep_millisecs", "0\n", "0\n");
	expect_taken("sleep_millisecs", "3600000", "3600000\n");
	expect_taken("sleep_millisecs", "20\n", "20\n");
	expect_taken("stats_interval_secs", "86400", "86400\n");
	expect_taken("stats_interval_secs", "0", "0\n");
	expect_taken("pages_to_scan", "1", "1\n");
	expect_taken("pages_to_scan", "1000000\n", "1000000\n");
	expect_taken("pages_to_scan", "1000", "1000\n");
	expect_taken("use_zero_pages", "0", "0\n");
	expect_taken("use_zero_pages", "1\n", "1\n");
	expect_taken("run", "0", "0\n");
	expect_taken("run", "1\n", "1\n");
	expect_taken("max_page_sharing", "2", "2\n");
	expect_taken("max_page_sharing", "256\n", "256\n");
	/* The governor: a preset sets the CPU ceiling; only exact names are taken. */
	for (j = 0; j < sizeof(bad_names) / sizeof(*bad_names); j++)
		expect_refused("cpu_governor", bad_names[j], strlen(bad_names[j]), EINVAL);
	expect_refused("cpu_governor", "full\0", 5, EINVAL);
	expect_refused("cpu_governor", overlong, sizeof(overlong), EINVAL);
	expect_reads("cpu_governor", "[full] medium low quiet\n");
	expect_taken("cpu_governor", "quiet", "full medium low [quiet]\n");
	expect_reads("max_cpu_percentage", "1\n");
	expect_taken("max_cpu_percentage", "100", "100\n");
	expect_reads("cpu_governor", "full medium low [quiet]\n");
	expect_taken("cpu_governor", "low\n", "full medium [low] quiet\n");
	expect_reads("max_cpu_percentage", "20\n");
	expect_taken("cpu_governor", "medium", "full [medium] low quiet\n");
	expect_reads("max_cpu_percentage", "50\n");
	expect_taken("cpu_governor", "full\n", "[full] medium low quiet\n");
	expect_reads("max_cpu_percentage", "95\n");
	/* The rungs' shares and cover times: four values, UKSM's syntax, nothing else. */
	expect_reads("cpu_ratios", "20 40 MAX/4 MAX/1\n");
	expect_reads("eval_intervals", "1000 500 200 50\n");
	for (j = 0; j < sizeof(bad_lists) / sizeof(*bad_lists); j++)
		expect_refused("cpu_ratios", bad_lists[j], strlen(bad_lists[j]), EINVAL);
	for (j = 0; j < sizeof(bad_intervals) / sizeof(*bad_intervals); j++)
		expect_refused("eval_intervals", bad_intervals[j], strlen(bad_intervals[j]), EINVAL);
	expect_refused("cpu_ratios", overlong, sizeof(overlong), EINVAL);
	expect_taken("cpu_ratios", "1 9999 MAX/100 MAX/1\n", "1 9999 MAX/100 MAX/1\n");
	expect_taken("eval_intervals", "600000 600000 10 10", "600000 600000 10 10\n");
	expect_taken("cpu_governor", "quiet", "full medium low [quiet]\n");
	expect_reads("cpu_ratios", "10 20 40 75\n");
	expect_reads("eval_intervals", "2000 1000 1000 1000\n");
	expect_taken("cpu_governor", "full", "[full] medium low quiet\n");
	expect_reads("cpu_ratios", "20 40 MAX/4 MAX/1\n");
	expect_taken("abundant_threshold", "0", "0\n");
	expect_taken("abundant_threshold", "10", "10\n");
	expect_taken("thrash_threshold", "99", "99\n");
	expect_taken("thrash_threshold", "50", "50\n");
	/* The merge domain: exact names only; the default keeps users apart. */
	expect_reads("merge_domain", "global [uid] cgroup\n");
	for (j = 0; j < sizeof(bad_names) / sizeof(*bad_names); j++)
		expect_refused("merge_domain", bad_names[j], strlen(bad_names[j]), EINVAL);
	expect_refused("merge_domain", "uid\0", 4, EINVAL);
	expect_refused("merge_domain", "UID", 3, EINVAL);
	expect_refused("merge_domain", "uid gid", 7, EINVAL);
	expect_refused("merge_domain", overlong, sizeof(overlong), EINVAL);
	expect_taken("merge_domain", "global\n", "[global] uid cgroup\n");
	expect_taken("merge_domain", "cgroup", "global uid [cgroup]\n");
	expect_taken("merge_domain", "uid", "global [uid] cgroup\n");
	/* Counters move on their own: only the refusal is checked. */
	for (i = 0; i < sizeof(counters) / sizeof(*counters); i++)
		if (!write_value(counters[i], "0", 1)) {
			printf("FAIL %s accepted a write\n", counters[i]);
			failures++;
		}
	printf("%s: %d failures\n", failures ? "FAIL" : "ok", failures);
	return failures ? 1 : 0;
}
