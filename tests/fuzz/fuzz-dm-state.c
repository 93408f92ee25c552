// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for the handover stream (devmodel/dm-state.c): what a
 * successor ferry-dm reads from its predecessor.  The input's first byte
 * picks how it is used:
 *   even  the rest is a stream: parsed as it is, then with its payload
 *         length and checksum made right (so mutations reach the sections
 *         and the devices' restore hooks) and loaded into a machine of
 *         UART, RTC and ACPI PM
 *   odd   the rest patches a real stream of that machine: records of
 *         u16 offset, u8 xor; then fixed up and loaded
 * Besides memory errors it aborts when a stream the machine itself saved
 * does not load back.  standalone.c replays tests/fuzz/corpus/dm-state.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "devmodel/dm-state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)

static void add(struct ferry_dm *dm, const char *type, const char *id, const char *opts)
{
    struct ferry_dm_opts *o = NULL;

    FUZZ_CHECK(dm_opts_parse(opts, &o) == 0);
    FUZZ_CHECK(dm_device_add(dm, type, id, o, NULL) == 0);
    dm_opts_free(o);
}

static void fix_up(uint8_t *buf, size_t len)
{
    if (len < DM_STATE_HEADER_SIZE + 4)
        return;
    uint64_t payload = len - DM_STATE_HEADER_SIZE - 4;
    for (int i = 0; i < 8; i++)
        buf[16 + i] = (uint8_t)(payload >> (8 * i));
    uint32_t crc = dm_state_crc32(buf, len - 4);
    for (int i = 0; i < 4; i++)
        buf[len - 4 + i] = (uint8_t)(crc >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t roles[] = { DM_STATE_FD_IOREQ_SOCK, DM_STATE_FD_CONTROL };
    struct event_base *base = event_base_new();
    struct ferry_dm_config cfg = { .name = "fuzz", .base = base };
    struct ferry_dm *dm;
    struct dm_state_view v;
    char why[256];
    GByteArray *real = g_byte_array_new();
    uint8_t *buf;
    size_t len;

    if (size < 1)
        goto out_base;
    FUZZ_CHECK(base && dm_create(&cfg, &dm) == 0);
    add(dm, "uart", "com1", "out=null");
    add(dm, "rtc", "rtc", "");
    add(dm, "acpi-pm", "pm", "");
    FUZZ_CHECK(dm_start(dm) == 0);
    FUZZ_CHECK(dm_state_save(dm, "fuzz", roles, 2, real) == 0);
    FUZZ_CHECK(dm_state_load(dm, "fuzz", real->data, real->len, &v, why, sizeof(why)) == 0);

    if (data[0] % 2 == 0) {
        len = size - 1;
        buf = g_malloc0(len ? len : 1);     /* no byte past the input when it is empty */
        memcpy(buf, data + 1, len);
        if (dm_state_parse(buf, len, &v, why, sizeof(why)) < 0)
            FUZZ_CHECK(why[0]);      /* every refusal says why */
    } else {
        len = real->len;
        buf = g_memdup2(real->data, len);
        for (size_t pos = 1; pos + 3 <= size; pos += 3) {
            size_t off = (size_t)(data[pos] | data[pos + 1] << 8) % len;
            buf[off] ^= data[pos + 2];
        }
    }
    fix_up(buf, len);
    if (dm_state_load(dm, "fuzz", buf, len, &v, why, sizeof(why)) < 0)
        FUZZ_CHECK(why[0]);
    /* Whatever it did, a reset machine still saves and loads its own state. */
    dm_reset(dm);
    g_byte_array_set_size(real, 0);
    FUZZ_CHECK(dm_state_save(dm, "fuzz", roles, 2, real) == 0);
    FUZZ_CHECK(dm_state_load(dm, "fuzz", real->data, real->len, &v, why, sizeof(why)) == 0);
    g_free(buf);
    dm_destroy(dm);
out_base:
    g_byte_array_free(real, TRUE);
    event_base_free(base);
    return 0;
}
