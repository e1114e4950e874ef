/* fuzz_input.h: what the fuzz targets share. Header-only, test code. */
#ifndef LUCKYSYNC_SPEC_FUZZ_INPUT_H
#define LUCKYSYNC_SPEC_FUZZ_INPUT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The input as an exact-size heap copy (never NUL-terminated), so AddressSanitizer reports any
 * read past size; NULL when out of memory. The caller frees it. */
static inline char *fuzz_copy(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (in && size)
        memcpy(in, data, size);
    return in;
}

#endif
