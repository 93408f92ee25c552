// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Replay driver for the PCI fuzz target without libFuzzer:
 *   fuzz-pci-replay FILE|DIR...        run each input (a crash reproduces)
 *   fuzz-pci-replay --random N SEED    run N pseudo-random inputs from SEED
 * Exits 0 when every input ran; a failed check aborts, as under libFuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FUZZ_INPUT_MAX  (1u << 20)      /* libFuzzer's default -max_len is far lower */
#define RANDOM_LEN_MAX  4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    if (!f) {
        fprintf(stderr, "fuzz-pci-replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    buf = malloc(FUZZ_INPUT_MAX);
    if (!buf) {
        fclose(f);
        return -1;
    }
    n = fread(buf, 1, FUZZ_INPUT_MAX, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

static int run_path(const char *path)
{
    struct stat st;
    struct dirent *de;
    DIR *d;
    int rc = 0;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "fuzz-pci-replay: cannot stat %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    d = opendir(path);
    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL) {
        char sub[4096];

        if (de->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        rc |= run_file(sub);
    }
    closedir(d);
    return rc;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

int main(int argc, char **argv)
{
    int rc = 0;

    if (argc == 4 && strcmp(argv[1], "--random") == 0) {
        unsigned long n = strtoul(argv[2], NULL, 0);
        uint64_t s = strtoull(argv[3], NULL, 0) | 1;
        uint8_t *buf = malloc(RANDOM_LEN_MAX);

        if (!buf)
            return 1;
        for (unsigned long i = 0; i < n; i++) {
            size_t len = xorshift(&s) % RANDOM_LEN_MAX;

            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)xorshift(&s);
            LLVMFuzzerTestOneInput(buf, len);
        }
        free(buf);
        printf("fuzz-pci-replay: %lu random inputs ran\n", n);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR... | --random N SEED\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        rc |= run_path(argv[i]);
    return rc ? 1 : 0;
}
