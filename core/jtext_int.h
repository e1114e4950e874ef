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

/* The 16-byte step of the scans, where SSE2 is there (every x86-64): which of the 16 bytes at
 * s need a closer look inside a JSON string (the bytes jtext_special8 flags), as bit i for
 * s[i], every flag exact; 0 when none do. One signed comparison below 0x20 catches both the
 * control bytes and every byte from 0x80 (negative as signed). */
#if defined(__SSE2__)
#include <emmintrin.h>
#define JTEXT_HAVE_SPECIAL16 1
static inline unsigned jtext_special16(const unsigned char *s)
{
    __m128i w = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i q = _mm_cmpeq_epi8(w, _mm_set1_epi8('"'));
    __m128i bs = _mm_cmpeq_epi8(w, _mm_set1_epi8('\\'));
    __m128i lo = _mm_cmplt_epi8(w, _mm_set1_epi8(0x20));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, bs), lo));
}
#endif

/* The first byte of s[0..end) that does not stand for itself inside a JSON string, or end:
 * 16 bytes at a time where SSE2 is there, then 8 at a time, then one at a time. */
static inline const unsigned char *jtext_skip_plain(const unsigned char *s,
                                                    const unsigned char *end)
{
#ifdef JTEXT_HAVE_SPECIAL16
    for (; end - s >= 16; s += 16) {
        unsigned m = jtext_special16(s);
        if (m)
            return s + __builtin_ctz(m);
    }
#endif
    for (; end - s >= 8; s += 8) {
        uint64_t m = jtext_special8(jtext_load8(s));
        if (m)
            return s + jtext_first8(m);
    }
    while (s < end && jtext_plain1(*s))
        s++;
    return s;
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
