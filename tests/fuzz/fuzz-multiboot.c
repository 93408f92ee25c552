// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for ferry-hv's multiboot loader: the header search,
 * its flags and address fields, the ELF program headers and the entry
 * point of a hostile image.  hv_mb_image_check must answer every input
 * with an entry point inside the loaded bytes or a reason, never read
 * outside it.  standalone.c replays corpus/multiboot through it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hypervisor/hv.h"

#define FUZZ_INPUT_MAX (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    uint64_t entry = 0;

    if (size > FUZZ_INPUT_MAX)
        return 0;
    /* An exact-size copy, so that reading one byte past it is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    why[0] = '\0';
    int rc = hv_mb_image_check(copy, size, &entry, why, sizeof(why));
    if (rc != 0 && why[0] == '\0')
        abort();                /* every refusal names its reason */
    free(copy);
    return 0;
}
