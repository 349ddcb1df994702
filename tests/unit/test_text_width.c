/* util/text_width: terminal columns of UTF-8 text, whatever the locale. The
 * widths expected are the Unicode standard's (EastAsianWidth W/F: 2;
 * General_Category Mn/Me/Cf: 0); malformed UTF-8 is one column a byte. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/text_width.h"

START_TEST(ascii_and_latin)
{
    ck_assert_uint_eq(es_text_width(""), 0);
    ck_assert_uint_eq(es_text_width("s1"), 2);
    ck_assert_uint_eq(es_text_width("caf\xc3\xa9"), 4);        /* é precomposed */
    ck_assert_uint_eq(es_text_width("cafe\xcc\x81"), 4);       /* e + U+0301 */
    ck_assert_uint_eq(es_text_width("a\xe2\x80\x8b" "b"), 2);  /* U+200B zero width space */
    ck_assert_uint_eq(es_text_width("\xc2\xad"), 1);           /* soft hyphen: shown */
    ck_assert_uint_eq(es_text_width("a\tb"), 2);               /* controls: 0 */
}
END_TEST

START_TEST(wide)
{
    ck_assert_uint_eq(es_text_width("\xe6\x97\xa5\xe6\x9c\xac"), 4);     /* 日本 */
    ck_assert_uint_eq(es_text_width("\xed\x95\x9c"), 2);                 /* 한 U+D55C */
    ck_assert_uint_eq(es_text_width("\xef\xbc\xa1"), 2);                 /* Ａ U+FF21 */
    ck_assert_uint_eq(es_text_width("\xf0\x9f\x98\x80"), 2);             /* U+1F600 */
    ck_assert_uint_eq(es_text_width("\xf0\xa0\x80\x80"), 2);             /* U+20000 */
    ck_assert_uint_eq(es_text_width("\xe1\x84\x80\xe1\x85\xa1"), 2);     /* jamo L+V */
    ck_assert_int_eq(es_char_width(0x3000), 2);                          /* ideographic space */
    ck_assert_int_eq(es_char_width(0xFF61), 1);                          /* halfwidth katakana */
}
END_TEST

START_TEST(malformed)
{
    unsigned cp;
    ck_assert_uint_eq(es_utf8_next("\xc3\xa9", 2, &cp), 2);
    ck_assert_uint_eq(cp, 0xE9);
    /* Truncated, overlong, surrogate, past U+10FFFF, stray continuation. */
    const char *bad[] = {"\xc3", "\xe6\x97", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                         "\xf4\x90\x80\x80", "\x80", "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_uint_eq(es_utf8_next(bad[i], strlen(bad[i]), &cp), 1);
        ck_assert_uint_eq(cp, 0xFFFD);
        ck_assert_uint_eq(es_text_width(bad[i]), strlen(bad[i]));
    }
    /* A sequence cut by the length given is malformed too. */
    ck_assert_uint_eq(es_utf8_next("\xe6\x97\xa5", 2, &cp), 1);
    ck_assert_uint_eq(es_text_width_n("\xe6\x97\xa5" "x", 2), 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("text_width");
    TCase *tc = tcase_create("width");
    tcase_add_test(tc, ascii_and_latin);
    tcase_add_test(tc, wide);
    tcase_add_test(tc, malformed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
