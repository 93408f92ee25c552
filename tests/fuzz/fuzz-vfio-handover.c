// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for the PCI section of ferry-dm's replace state
 * (companion_vfio_handover_restore, companion/dm-vfio.h): what a successor
 * reads about its predecessor's PCI assignments.  The input's first byte is
 * the number of claim fds passed (0-7, each a /dev/null), the rest the
 * section.  Besides memory errors it aborts when a refusal says nothing,
 * when a refused section took an fd or kept an assignment, and when a
 * section taken does not save back to the same bytes and fds (what the
 * next replace hands on).  standalone.c replays tests/fuzz/corpus/vfio-handover.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "companion/dm-vfio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define FDS 7

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct companion_vfio *v = NULL;
    int fds[FDS], out[FDS + 1];
    unsigned n, got = 0;
    char why[512] = "";
    GByteArray *again;
    int rc;

    if (size < 1)
        return 0;
    n = data[0] % (FDS + 1);
    for (unsigned i = 0; i < n; i++)
        FUZZ_CHECK((fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
    FUZZ_CHECK(companion_vfio_load(NULL, &v) == 0);
    rc = companion_vfio_handover_restore(v, size > 1 ? data + 1 : NULL, size - 1, fds, n, why,
                                         sizeof(why));
    if (rc < 0) {
        FUZZ_CHECK(why[0]);
        FUZZ_CHECK(companion_vfio_assigned(v) == 0);
        for (unsigned i = 0; i < n; i++) {
            FUZZ_CHECK(fcntl(fds[i], F_GETFD) >= 0);     /* not taken */
            close(fds[i]);
        }
        companion_vfio_free(v);
        return 0;
    }
    /* taken: the next replace hands on the same bytes and the same fds, in order */
    again = g_byte_array_new();
    FUZZ_CHECK(companion_vfio_handover_save(v, again, out, FDS + 1, &got, why,
                                            sizeof(why)) == 0);
    FUZZ_CHECK(got == n);
    for (unsigned i = 0; i < n; i++)
        FUZZ_CHECK(out[i] == fds[i]);
    if (size > 1 && again->len)
        FUZZ_CHECK(again->len == size - 1 && !memcmp(again->data, data + 1, size - 1));
    else
        FUZZ_CHECK(n == 0);
    g_byte_array_unref(again);
    companion_vfio_free(v);         /* closes the fds it took */
    return 0;
}
