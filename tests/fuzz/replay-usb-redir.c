// SPDX-License-Identifier: GPL-2.0-or-later
/* Replays inputs (files) through the usbredir fuzz target without libFuzzer:
 * for regression tests and for reproducing a crash.  replay-usb-redir FILE... */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        gchar *buf = NULL;
        gsize len = 0;
        if (!g_file_get_contents(argv[i], &buf, &len, NULL)) {
            fprintf(stderr, "replay-usb-redir: cannot read %s\n", argv[i]);
            return 1;
        }
        LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
        g_free(buf);
        printf("replayed %s (%zu bytes)\n", argv[i], (size_t)len);
    }
    return 0;
}
