// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark workload: PROCS processes each write MIB MiB of zeros (present private pages),
 * opt in to built-in KSM with prctl(PR_SET_MEMORY_MERGE) (uksm needs nothing), print
 * "filled" once all are written, and stay until killed.
 *
 *   zero_bench PROCS MIB
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif

int main(int argc, char **argv)
{
	int procs, i, ready[2];
	size_t len;
	char c;

	if (argc != 3)
		return fprintf(stderr, "usage: zero_bench PROCS MIB\n"), 2;
	procs = atoi(argv[1]);
	len = (size_t)atol(argv[2]) << 20;
	if (pipe(ready))
		return 2;
	for (i = 0; i < procs; i++) {
		if (fork() == 0) {
			char *p;
			size_t off;

			prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
			p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				_exit(2);
			madvise(p, len, MADV_NOHUGEPAGE);
			for (off = 0; off < len; off += 4096) {
				p[off] = 1;
				p[off] = 0;
			}
			if (write(ready[1], "", 1) != 1)
				_exit(2);
			for (;;)
				pause();
		}
	}
	for (i = 0; i < procs; i++)
		if (read(ready[0], &c, 1) != 1)
			return 2;
	printf("filled\n");
	fflush(stdout);
	for (;;)
		pause();
}
