// SPDX-License-Identifier: GPL-2.0
/*
 * Gives built-in KSM something to merge: 64 identical MADV_MERGEABLE pages. Waits until
 * /proc/self/ksm_merging_pages is positive (ksmd must run), prints "merged N", then
 * sleeps until killed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void)
{
	size_t len = 64 * 4096;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int i;

	if (p == MAP_FAILED || madvise(p, len, MADV_NOHUGEPAGE) || madvise(p, len, MADV_MERGEABLE))
		return perror("mmap/madvise"), 1;
	memset(p, 0x5a, len);
	for (i = 0; i < 600; i++) {
		long merged = 0;
		FILE *f = fopen("/proc/self/ksm_merging_pages", "r");

		if (f && fscanf(f, "%ld", &merged) == 1 && merged > 0) {
			printf("merged %ld\n", merged);
			fflush(stdout);
			for (;;)
				pause();
		}
		if (f)
			fclose(f);
		usleep(100000);
	}
	fprintf(stderr, "ksmd merged nothing in 60 s\n");
	return 1;
}
