/* race_swap A B [A2 B2 ...]: exchange each pair of paths with
 * renameat2(RENAME_EXCHANGE) in a loop until SIGTERM, e.g. a directory and a
 * symbolic link pointing outside a --root, so that any path walk racing it
 * sees one or the other at any instant. On SIGTERM it stops with every pair
 * as it found it. Built by the test that uses it. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int exchange(const char *a, const char *b)
{
    if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0)
        return 0;
    fprintf(stderr, "race_swap: %s <-> %s: %s\n", a, b, strerror(errno));
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc % 2 != 1) {
        fprintf(stderr, "usage: race_swap A B [A2 B2 ...]\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    unsigned long rounds = 0;
    while (!stop) {
        /* Twice per round: between rounds every pair is as it was found. */
        for (int k = 0; k < 2; k++)
            for (int i = 1; i + 1 < argc; i += 2)
                if (exchange(argv[i], argv[i + 1]) < 0)
                    return 1;
        rounds++;
    }
    fprintf(stderr, "race_swap: %lu rounds\n", rounds);
    return 0;
}
