/* The one out-of-memory policy: allocation failure is not handled where it
 * happens. Every allocation goes through these helpers (or, for memory a
 * library such as libxml2 or json-c allocates, through es_xcheck), and
 * running out ends the process at once: one line "extsnap: out of memory"
 * on stderr and exit status ES_EXIT_OOM, without running anything further.
 * For the files that is a crash like any other: a journal left behind is
 * finished or undone by `extsnap recover` (and by the next command on the
 * domain), and the kernel releases the process's locks with it.
 *
 * Not covered: a buffer whose size a damaged file decides (the refcount
 * arrays `img check` builds for an image's claimed size, a bitmap
 * directory): allocated with malloc and, when that fails, reported as a
 * problem of that file, so that checking a hostile image ends in an error
 * message and not in this exit. */
#ifndef ES_UTIL_XALLOC_H
#define ES_UTIL_XALLOC_H

#include <stddef.h>

/* Exit status after running out of memory (sysexits' EX_OSERR). */
#define ES_EXIT_OOM 71

/* End the process: "extsnap: out of memory", exit status ES_EXIT_OOM. */
_Noreturn void es_oom(void);

/* Never NULL (a request for 0 bytes gets a unique pointer too). */
void *es_xmalloc(size_t n);
void *es_xcalloc(size_t n, size_t size);
void *es_xrealloc(void *p, size_t n);
/* p resized to n elements of size bytes (overflow is out of memory). */
void *es_xreallocarray(void *p, size_t n, size_t size);
/* A copy of s; NULL stays NULL. */
char *es_xstrdup(const char *s);
/* The n bytes at s (which may hold NULs) and a terminating NUL. */
char *es_xstrdup_len(const void *s, size_t n);
char *es_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* p, or the end of the process when p is NULL: for what a library returns
 * where NULL can only mean it ran out of memory. */
#define es_xcheck(p) ((__typeof__(p))es_xcheck_ptr((void *)(p)))
void *es_xcheck_ptr(void *p);

/* Tests: make the nth allocation through these helpers from now on fail
 * (1 = the next one); 0 turns it off. */
void es_xalloc_fail_at(unsigned long n);

#endif
