/* jtext_int.h: what jtext's writer (jtext.c) and reader (jtext_load.c) share: the byte
 * classes of JSON strings. Private to those two files. */
#ifndef LUCKYSYNC_JTEXT_INT_H
#define LUCKYSYNC_JTEXT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 1 for a byte that stands for itself inside a JSON string: ASCII from 0x20 but '"' and '\\'. */
static inline int jtext_plain1(unsigned c)
{
    return c - 0x20 < 0x60 && c != '"' && c != '\\';
}

/* 1 when none of the 8 bytes at s needs a closer look inside a JSON string: no '"', '\\',
 * byte below 0x20 or byte from 0x80 (the "has zero byte"/"has less than" word tricks, exact for
 * whether any byte matches). Strings are scanned and copied a word at a time with it. */
static inline int jtext_plain8(const unsigned char *s)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t w, q, b;
    memcpy(&w, s, 8);
    q = w ^ (ones * '"');
    b = w ^ (ones * '\\');
    return ((((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & high) == 0;
}

/* Length of the well-formed UTF-8 sequence at s (avail > 0 bytes, s[0] >= 0x80), or 0. Rejects
 * what jansson's utf8_check_first/utf8_check_full reject: stray continuation bytes, overlong
 * forms, UTF-16 surrogates (U+D800..U+DFFF) and code points above U+10FFFF (RFC 3629 table). */
static inline size_t jtext_utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF; /* the second byte's range */
    if (c == 0xE0 || c == 0xF0)
        lo = c == 0xE0 ? 0xA0 : 0x90; /* overlong forms */
    else if (c == 0xED || c == 0xF4)
        hi = c == 0xED ? 0x9F : 0x8F; /* surrogates, beyond U+10FFFF */
    size_t n = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (!n || avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

#endif
