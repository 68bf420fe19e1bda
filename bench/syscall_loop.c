/* syscall_loop N CALL: make CALL N times and print the mean cost in ns (security_bench.py).
 *   getppid      allowed outright by Docker's profile: after the first call the kernel's
 *                seccomp action cache answers it without running the filter (Linux 5.11)
 *   personality  allowed only for some arguments: the filter runs on every call
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	int pers = argc > 2 && !strcmp(argv[2], "personality");
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		pers ? syscall(SYS_personality, 0xffffffffUL) : syscall(SYS_getppid);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	return 0;
}
