// SPDX-License-Identifier: GPL-2.0
/*
 * Generated hostile input for every tunable of uksm (t_sysfs_fuzz.sh), in
 * /sys/kernel/mm/uksm/ and in uksm's files of /sys/kernel/mm/ksm/.
 *
 *   sysfs_fuzz ROUNDS SEED     (as root, uksm loaded)
 *
 * Each attribute gets ROUNDS inputs from a seeded generator: random bytes (NULs and
 * non-ASCII included), digits with signs, spaces, newlines and overflowing lengths, values
 * just outside and inside the range, and mutated names and lists. For each input:
 *  - a numeric attribute must take exactly the plain decimal numbers in its range (one
 *    trailing newline allowed) and read them back, and refuse everything else with
 *    EINVAL; a named or listed one must read back a value it would take again;
 *  - a refused write leaves the value as it was, and the kernel log gets a line naming
 *    the attribute ("NAME: refused") for it (read from /dev/kmsg);
 * Then 4 processes write generated input to all attributes at once for a few seconds
 * while a fifth reads every file, and every numeric attribute must read a value in its
 * range afterwards. Counts are printed; the original values are restored.
 */
#include <signal.h>
#include <sys/wait.h>
#include "vmtest.h"

struct attr {
	const char *path;
	long long min, max;	/* numeric range; min > max: a named or listed value */
};

static const struct attr attrs[] = {
	{ "/sys/kernel/mm/uksm/run", 0, 2 },
	{ "/sys/kernel/mm/uksm/sleep_millisecs", 0, 3600000 },
	{ "/sys/kernel/mm/uksm/stats_interval_secs", 0, 86400 },
	{ "/sys/kernel/mm/uksm/pages_to_scan", 1, 1000000 },
	{ "/sys/kernel/mm/uksm/use_zero_pages", 0, 1 },
	{ "/sys/kernel/mm/uksm/max_page_sharing", 2, 1000000 },
	{ "/sys/kernel/mm/uksm/max_cpu_percentage", 1, 100 },
	{ "/sys/kernel/mm/uksm/abundant_threshold", 0, 99 },
	{ "/sys/kernel/mm/uksm/thrash_threshold", 0, 99 },
	{ "/sys/kernel/mm/uksm/cpu_governor", 1, 0 },
	{ "/sys/kernel/mm/uksm/cpu_ratios", 1, 0 },
	{ "/sys/kernel/mm/uksm/eval_intervals", 1, 0 },
	{ "/sys/kernel/mm/uksm/merge_domain", 1, 0 },
	{ "/sys/kernel/mm/ksm/run", 0, 2 },
	{ "/sys/kernel/mm/ksm/sleep_millisecs", 0, 3600000 },
	{ "/sys/kernel/mm/ksm/pages_to_scan", 1, 1000000 },
	{ "/sys/kernel/mm/ksm/use_zero_pages", 0, 1 },
	{ "/sys/kernel/mm/ksm/max_page_sharing", 2, 1000000 },
};
#define NATTRS (sizeof(attrs) / sizeof(attrs[0]))
/* Longest input the module reads (logic/src/tunable.rs MAX_INPUT) is far below this. */
#define MAXLEN 300

static uint64_t rng;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const char *names[] = { "full", "medium", "low", "quiet", "global", "uid", "cgroup",
			       "MAX/1", "MAX/4", "20 40 MAX/4 MAX/1", "1000 500 200 50",
			       "600000 600000 600000 600000", "MAX/1 MAX/1 MAX/1 MAX/1" };

/* One generated input into buf; returns its length. */
static size_t generate(const struct attr *a, char *buf)
{
	size_t len = 0, i, n;
	int kind = next() % 8;

	switch (kind) {
	case 0: /* random bytes, any value */
		len = next() % MAXLEN;
		for (i = 0; i < len; i++)
			buf[i] = next();
		break;
	case 1: /* printable ASCII */
		len = next() % 40;
		for (i = 0; i < len; i++)
			buf[i] = 32 + next() % 95;
		break;
	case 2: /* digits, maybe signed, spaced, overflowing, with newlines */
		if (next() % 4 == 0)
			buf[len++] = "+- \t"[next() % 4];
		n = 1 + next() % (next() % 4 == 0 ? 40 : 8);
		for (i = 0; i < n; i++)
			buf[len++] = '0' + next() % 10;
		if (next() % 2)
			buf[len++] = '\n';
		if (next() % 8 == 0)
			buf[len++] = "\n \0x"[next() % 4];
		break;
	case 3: /* just outside or at the range */
	case 4: {
		long long v = a->min <= a->max ?
			      (next() % 2 ? a->max : a->min) + (long long)(next() % 3) - 1 :
			      (long long)(next() % 100000);

		len = snprintf(buf, MAXLEN, "%lld%s", v, next() % 2 ? "\n" : "");
		break;
	}
	case 5: /* in range */
		len = snprintf(buf, MAXLEN, "%lld%s",
			       a->min <= a->max ? a->min + (long long)(next() %
							   (uint64_t)(a->max - a->min + 1)) : 0,
			       next() % 2 ? "\n" : "");
		break;
	default: { /* a name or list, mutated */
		const char *s = names[next() % (sizeof(names) / sizeof(names[0]))];

		len = strlen(s);
		memcpy(buf, s, len);
		if (next() % 4)
			buf[next() % len] ^= 1 << (next() % 8);
		if (next() % 3 == 0)
			buf[len++] = "\n \0\xff"[next() % 4];
		break;
	}
	}
	return len;
}

/*
 * What a numeric attribute must make of input: the number, or -1 to refuse. At most 32
 * bytes (MAX_INPUT in module/logic/src/tunable.rs), digits only, one trailing newline.
 */
static long long expected(const struct attr *a, const char *buf, size_t len)
{
	long long v = 0;
	size_t i;

	if (len > 32)
		return -1;
	if (len && buf[len - 1] == '\n')
		len--;
	if (!len)
		return -1;
	for (i = 0; i < len; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		v = v * 10 + (buf[i] - '0');
		if (v > a->max)
			return -1;
	}
	return v >= a->min ? v : -1;
}

static void read_value(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
}

static int write_value(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY), err = 0;

	if (fd < 0)
		return errno;
	if (write(fd, buf, len) != (ssize_t)len)
		err = errno ? errno : EIO;
	close(fd);
	return err;
}

/* The value a read gives, as input that must be taken again ("[x] y z": x). */
static size_t as_input(const char *value, char *buf)
{
	const char *b = strchr(value, '[');

	if (b) {
		size_t n = strcspn(b + 1, "]");

		memcpy(buf, b + 1, n);
		return n;
	}
	strcpy(buf, value);
	return strlen(buf);
}

static int kmsg = -1;

/* Whether the kernel logged "NAME: refused" since the last call. */
static int logged_refusal(const char *path)
{
	const char *name = strrchr(path, '/') + 1;
	char rec[2048], want[96];
	int found = 0;
	ssize_t n;

	snprintf(want, sizeof(want), " %s: refused", name);
	while ((n = read(kmsg, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n > 0) {
			rec[n] = 0;
			found |= strstr(rec, want) != NULL;
		}
	}
	return found;
}

static void drain_kmsg(void)
{
	char rec[2048];

	while (read(kmsg, rec, sizeof(rec)) > 0 || errno == EPIPE)
		;
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 1000;
	char orig[NATTRS][256], buf[MAXLEN + 16], before[256], after[256], again[256];
	long taken = 0, refused = 0, unlogged = 0;
	size_t i, len;
	long r;
	int w;

	rng = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x5eed;
	setvbuf(stdout, NULL, _IONBF, 0);
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (kmsg < 0 || lseek(kmsg, 0, SEEK_END) < 0)
		return perror("/dev/kmsg"), 2;
	for (i = 0; i < NATTRS; i++)
		read_value(attrs[i].path, orig[i], sizeof(orig[i]));

	for (i = 0; i < NATTRS; i++) {
		const struct attr *a = &attrs[i];
		long t = 0, f = 0;

		read_value(a->path, after, sizeof(after));
		for (r = 0; r < rounds; r++) {
			long long want;
			int err;

			len = generate(a, buf);
			/* Only this program writes now: the value is what the last read gave. */
			strcpy(before, after);
			drain_kmsg();
			err = write_value(a->path, buf, len);
			read_value(a->path, after, sizeof(after));
			if (!len) {
				/* sysfs passes no empty write on: nothing may change. */
				CHECK(!err && !strcmp(before, after), "%s: empty write changed %s to %s",
				      a->path, before, after);
				continue;
			}
			if (err) {
				f++;
				CHECK(err == EINVAL, "%s <- %zu bytes: errno %d, not EINVAL",
				      a->path, len, err);
				CHECK(!strcmp(before, after), "%s: refused write changed %s to %s",
				      a->path, before, after);
				if (!logged_refusal(a->path))
					unlogged++;
			} else {
				t++;
			}
			if (a->min <= a->max) {
				want = expected(a, buf, len);
				CHECK((want < 0) == (err != 0),
				      "%s <- \"%.*s\" (%zu bytes): %s", a->path,
				      (int)(len > 40 ? 40 : len), buf, len,
				      err ? "refused a valid number" : "took invalid input");
				if (!err && want >= 0)
					CHECK(atoll(after) == want, "%s <- %lld reads %s", a->path,
					      want, after);
			} else if (!err) {
				/* A named or listed value reads back as input it takes again. */
				size_t n = as_input(after, again);

				CHECK(!write_value(a->path, again, n), "%s: its own value %s refused",
				      a->path, after);
			}
		}
		printf("%s: %ld inputs, %ld taken, %ld refused\n", a->path, rounds, t, f);
		taken += t;
		refused += f;
		write_value(a->path, orig[i], strlen(orig[i]));
	}
	CHECK(unlogged == 0, "%ld refused writes without a log line", unlogged);

	/* Concurrent writers and a reader. */
	pid_t pids[5];

	for (w = 0; w < 5; w++) {
		pids[w] = fork();
		if (!pids[w]) {
			double end = now_s() + 5;

			rng += w * 0x9E3779B97F4A7C15ULL;
			while (now_s() < end) {
				if (w == 4) {
					for (i = 0; i < NATTRS; i++)
						read_value(attrs[i].path, after, sizeof(after));
					continue;
				}
				i = next() % NATTRS;
				/* Not run=2: each would unmerge everything, slowly. */
				if (strstr(attrs[i].path, "/run"))
					continue;
				len = generate(&attrs[i], buf);
				write_value(attrs[i].path, buf, len);
			}
			_exit(0);
		}
	}
	for (w = 0; w < 5; w++)
		waitpid(pids[w], NULL, 0);
	for (i = 0; i < NATTRS; i++) {
		read_value(attrs[i].path, after, sizeof(after));
		if (attrs[i].min <= attrs[i].max)
			CHECK(expected(&attrs[i], after, strlen(after)) >= 0,
			      "%s reads %s after concurrent writes", attrs[i].path, after);
		write_value(attrs[i].path, orig[i], strlen(orig[i]));
	}
	printf("sysfs_fuzz: %zu attributes, %ld inputs each: %ld taken, %ld refused, %ld refusals without a log line; %d failures\n",
	       NATTRS, rounds, taken, refused, unlogged, failures);
	return failures ? 1 : 0;
}
