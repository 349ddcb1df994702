/* Skipping in the check-based tests. A test that cannot run its oracle
 * (qemu-img, qemu-io, qemu-system-x86_64, virt-xml-validate, chattr, a
 * second file system...) must not count as a pass: its program exits 77,
 * which ctest reports as "Skipped" (SKIP_RETURN_CODE, set for every test
 * in CMakeLists.txt) and which scripts/test.sh turns into a failure in CI.
 *
 *   tu_need_tools("qemu-img", "qemu-io", NULL);   first thing in main():
 *       exit 77 at once when one of the tools is not in PATH
 *   TU_SKIP_IF(cond, fmt, ...)                    inside a test: record a
 *       skip (one "SKIP: ..." line on stderr) and return from the test
 *   return tu_exit_status(failed);                end of main(): 1 when a
 *       test failed, else 77 when one was skipped, else 0
 *
 * check runs each test in a forked child (CK_FORK=yes), so the skip count
 * lives in a shared anonymous mapping made before main(). Header-only
 * (static functions) because each tests/unit/test_*.c is its own program. */
#ifndef ES_TESTS_TU_SKIP_H
#define ES_TESTS_TU_SKIP_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TU_SKIP_EXIT 77
#define TU_UNUSED __attribute__((unused))

static volatile int *tu_skips;

__attribute__((constructor)) static void tu_skip_map(void)
{
    void *p = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("tu_skip: mmap");
        exit(EXIT_FAILURE);
    }
    tu_skips = p;
}

/* Whether prog is an executable file in one of PATH's directories. */
static TU_UNUSED bool tu_have_tool(const char *prog)
{
    const char *p = getenv("PATH");
    if (!p)
        return false;
    char buf[PATH_MAX];
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n ? p : ".", prog);
        if (access(buf, X_OK) == 0)
            return true;
        p += n + (colon ? 1 : 0);
    }
    return false;
}

/* NULL-terminated list of tools; exits 77 when one is missing. */
static TU_UNUSED void tu_need_tools(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    for (const char *t = first; t; t = va_arg(ap, const char *)) {
        if (!tu_have_tool(t)) {
            fprintf(stderr, "SKIP: %s is not in PATH (an oracle of these tests; run scripts/deps.sh)\n",
                    t);
            exit(TU_SKIP_EXIT);
        }
    }
    va_end(ap);
}

static TU_UNUSED void tu_skip_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static TU_UNUSED void tu_skip_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("SKIP: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    __atomic_add_fetch(tu_skips, 1, __ATOMIC_SEQ_CST);
}

#define TU_SKIP_IF(cond, ...)                                                                      \
    do {                                                                                           \
        if (cond) {                                                                                \
            tu_skip_note(__VA_ARGS__);                                                             \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static TU_UNUSED int tu_exit_status(int failed)
{
    if (failed)
        return EXIT_FAILURE;
    if (*tu_skips) {
        fprintf(stderr, "%d test(s) skipped: exit %d (not a pass)\n", *tu_skips, TU_SKIP_EXIT);
        return TU_SKIP_EXIT;
    }
    return EXIT_SUCCESS;
}

#endif
