// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Replay driver for the libFuzzer targets, linked instead of libFuzzer in
 * normal builds: runs every file (or every file in a folder) named on the
 * command line through LLVMFuzzerTestOneInput.  `--random N SEED` also runs
 * N pseudo-random inputs derived from those files (byte flips, splices,
 * truncations), so the normal test suite does a deterministic fuzz pass.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (1 << 20)

struct input {
    uint8_t *data;
    size_t size;
};

static struct input *inputs;
static size_t nr_inputs;

static int load_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "standalone: cannot open %s\n", path);
        return -1;
    }
    uint8_t *buf = malloc(INPUT_MAX);
    size_t n = fread(buf, 1, INPUT_MAX, f);
    fclose(f);
    inputs = realloc(inputs, (nr_inputs + 1) * sizeof(*inputs));
    inputs[nr_inputs++] = (struct input){ buf, n };
    return 0;
}

static int load(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "standalone: %s: not found\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return load_file(path);
    DIR *d = opendir(path);
    struct dirent *e;
    int rc = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        rc |= load_file(p);
    }
    if (d)
        closedir(d);
    return rc;
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int main(int argc, char **argv)
{
    unsigned long random_runs = 0;
    uint64_t seed = 1;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--random") && i + 2 < argc) {
            random_runs = strtoul(argv[i + 1], NULL, 0);
            seed = strtoull(argv[i + 2], NULL, 0) | 1;
            i += 2;
        } else if (load(argv[i])) {
            return 1;
        }
    }
    for (size_t i = 0; i < nr_inputs; i++)
        LLVMFuzzerTestOneInput(inputs[i].data, inputs[i].size);
    uint8_t *buf = malloc(INPUT_MAX);
    for (unsigned long r = 0; r < random_runs && nr_inputs; r++) {
        struct input *a = &inputs[rng(&seed) % nr_inputs];
        struct input *b = &inputs[rng(&seed) % nr_inputs];
        size_t n = a->size;
        memcpy(buf, a->data, n);
        switch (rng(&seed) % 4) {
        case 0:     /* flip a few bytes */
            for (int k = 0; n && k < 4; k++)
                buf[rng(&seed) % n] ^= (uint8_t)rng(&seed);
            break;
        case 1:     /* truncate */
            n = n ? rng(&seed) % n : 0;
            break;
        case 2: {   /* splice b's tail on */
            size_t cut = n ? rng(&seed) % n : 0;
            size_t take = b->size < INPUT_MAX - cut ? b->size : INPUT_MAX - cut;
            memcpy(buf + cut, b->data, take);
            n = cut + take;
            break;
        }
        default:    /* overwrite a word with an extreme value */
            if (n >= 4) {
                static const uint32_t extremes[] = { 0, 1, 0x7fffffff, 0x80000000, 0xffffffff };
                uint32_t v = extremes[rng(&seed) % 5];
                memcpy(buf + rng(&seed) % (n - 3), &v, 4);
            }
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    free(buf);
    printf("standalone: %zu inputs and %lu variations ran\n", nr_inputs, random_runs);
    for (size_t i = 0; i < nr_inputs; i++)
        free(inputs[i].data);
    free(inputs);
    return 0;
}
