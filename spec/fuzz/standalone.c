/* standalone.c: runs a libFuzzer target without libFuzzer, for the test suite: the seed files
 * under spec/fuzz/corpus/<target>/ as they are, then a fixed number of deterministic random
 * mutations of them (byte flips, inserts, truncations, splices). Usage: <bin> <corpus dir>
 * [iterations]. With clang, build the same targets with -fsanitize=fuzzer for real fuzzing. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 256
#define MAX_LEN 4096

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv)
{
    static uint8_t seeds[MAX_SEEDS][MAX_LEN];
    static size_t lens[MAX_SEEDS];
    size_t nseeds = 0;
    long iterations = argc > 2 ? strtol(argv[2], NULL, 10) : 20000;
    DIR *d = argc > 1 ? opendir(argv[1]) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) && nseeds < MAX_SEEDS) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        lens[nseeds] = fread(seeds[nseeds], 1, MAX_LEN, f);
        fclose(f);
        LLVMFuzzerTestOneInput(seeds[nseeds], lens[nseeds]);
        nseeds++;
    }
    if (d)
        closedir(d);
    if (!nseeds) {
        memcpy(seeds[0], "{}", 2);
        lens[nseeds++] = 2;
    }
    static uint8_t buf[MAX_LEN * 2];
    for (long i = 0; i < iterations; i++) {
        size_t s = next() % nseeds, n = lens[s];
        memcpy(buf, seeds[s], n);
        int edits = 1 + (int)(next() % 8);
        for (int k = 0; k < edits; k++) {
            size_t at = n ? next() % n : 0;
            switch (next() % 5) {
            case 0: if (n) buf[at] ^= (uint8_t)(1u << (next() % 8)); break;
            case 1: if (n) buf[at] = (uint8_t)next(); break;
            case 2: if (n < sizeof buf - 1) { memmove(buf + at + 1, buf + at, n - at); buf[at] = (uint8_t)next(); n++; } break;
            case 3: n = at; break;
            case 4: { size_t o = next() % nseeds, from = lens[o] ? next() % lens[o] : 0, take = lens[o] - from;
                      if (at + take > sizeof buf) take = sizeof buf - at;
                      memcpy(buf + at, seeds[o] + from, take); if (at + take > n) n = at + take; } break;
            }
        }
        uint8_t *exact = malloc(n ? n : 1); /* exact size: reads past the end are caught */
        memcpy(exact, buf, n);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
    }
    printf("%ld inputs, %zu seeds: ok\n", iterations, nseeds);
    return 0;
}
