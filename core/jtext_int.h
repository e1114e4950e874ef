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

/* The 8 bytes at s as a word whose least significant byte is s[0] whatever the byte order, so
 * that the lowest flagged byte of a mask below is the first one in memory. memcpy: s may be
 * unaligned. */
static inline uint64_t jtext_load8(const unsigned char *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* Which bytes of w (from jtext_load8) need a closer look inside a JSON string, as the high bit
 * of each: 0 when none do (no '"', '\\', byte below 0x20 or from 0x80), else jtext_first8 gives
 * the index of the first that does. Only that lowest flag is exact: a later byte may be flagged
 * by a borrow, but borrows run upwards only, from a byte that is flagged itself.
 * The tricks: x = w ^ 0x02 maps exactly the bytes below 0x20 and '"' (0x22) below 0x21, so
 * x - 0x21 sets their high bit; bs = w ^ '\\' is 0 only for '\\', so bs - 1 sets its high
 * bit; a byte from 0x80 keeps its high bit through the xors and the subtractions may set it
 * too, so OR-ing in w flags it without the usual "& ~x" masks. */
static inline uint64_t jtext_special8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, x = w ^ (ones * 0x02), bs = w ^ (ones * '\\');
    return ((x - ones * 0x21) | (bs - ones) | w) & (ones * 0x80);
}

/* The index (0..7) of the lowest flagged byte of a non-zero mask from jtext_special8. */
static inline size_t jtext_first8(uint64_t m)
{
    return (size_t)__builtin_ctzll(m) >> 3;
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
