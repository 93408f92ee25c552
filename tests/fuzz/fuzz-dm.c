// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for ferry-dm's device model: the input is a stream of
 * guest accesses (port, MMIO, PCI config and string-I/O ioreqs with any
 * size, count, type and data pointer) and control-socket commands against
 * the default machine (PCI host, UART, RTC, ACPI PM, 0xcf9, POST, debug
 * exit) plus a pci-test function and QEMU's test devices (pc-testdev,
 * pci-testdev, fw-cfg and its DMA descriptors), with a small guest RAM for
 * DMA; and
 * save/restore of a tampered state image, device resets.  Besides memory
 * errors it aborts when a read answers more bytes than it was asked for.
 *
 * Records: op (1 byte), then
 *   op % 4 == 0  ioreq: addr u64, data u64, size selector u8, type u8,
 *                dir u8, flags u8 (bit 0 data_is_ptr, bit 1 df), count u16
 *   op % 4 == 1  control: length u8, then that many bytes of JSON
 *   op % 4 == 2  save, flip the byte at offset u16, restore
 *   op % 4 == 3  reset every device
 * In every build standalone.c replays tests/fuzz/corpus/dm plus seeded
 * variations as the unit test fuzz-corpus-dm.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <event2/event.h>

#include "devmodel/control.h"
#include "devmodel/dm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define FUZZ_RAM 0x10000

static void add(struct ferry_dm *dm, const char *type, const char *id, const char *opts)
{
    struct ferry_dm_opts *o = NULL;

    FUZZ_CHECK(dm_opts_parse(opts, &o) == 0);
    FUZZ_CHECK(dm_device_add(dm, type, id, o, NULL) == 0);
    dm_opts_free(o);
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t sizes[] = { 1, 2, 4, 8, 0, 3, 5, 16 };
    struct event_base *base = event_base_new();
    struct ferry_dm_config cfg = { .name = "fuzz", .base = base };
    struct ioreq_msg_memory_reply ram = { .nr_regions = 1 };
    struct ferry_dm *dm;
    size_t pos = 0;
    int fd;

    FUZZ_CHECK(base && dm_create(&cfg, &dm) == 0);
    /* RAM first: fw-cfg reads the memory map when it is added. */
    fd = memfd_create("fuzz-ram", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0 && ftruncate(fd, FUZZ_RAM) == 0);
    ram.region[0].size = FUZZ_RAM;
    FUZZ_CHECK(dm_set_guest_memory(dm, fd, &ram) == 0);
    close(fd);
    add(dm, "pci-host", "pci", "");
    add(dm, "uart", "com1", "out=null");
    add(dm, "rtc", "rtc", "");
    add(dm, "acpi-pm", "pm", "");
    add(dm, "reset", "reset", "");
    add(dm, "post", "post", "");
    add(dm, "debug-exit", "debug-exit", "");
    add(dm, "pci-test", "pt", "");
    add(dm, "pc-testdev", "testdev", "");
    add(dm, "pci-testdev", "ptd", "");
    add(dm, "fw-cfg", "fwcfg", "cpus=2");
    FUZZ_CHECK(dm_start(dm) == 0);

    while (pos < size) {
        uint8_t op = data[pos++];

        switch (op % 4) {
        case 0: {
            if (size - pos < 22)
                goto out;
            const uint8_t *p = data + pos;
            ioreq_t req = {
                .addr = rd64(p), .data = rd64(p + 8), .size = sizes[p[16] % 8],
                .type = p[17] % 10, .dir = p[18] & 1, .data_is_ptr = p[19] & 1,
                .df = (p[19] >> 1) & 1, .count = (uint32_t)p[20] | (uint32_t)p[21] << 8,
            };
            /* Mostly near the devices, sometimes anywhere. */
            if (req.type == IOREQ_TYPE_PIO && !(p[19] & 4))
                req.addr &= 0xffff;
            pos += 22;
            bool plain_read = req.dir == IOREQ_READ && !req.data_is_ptr && req.size >= 1 &&
                              req.size <= 4 && req.type <= IOREQ_TYPE_PCI_CONFIG;
            dm_handle_ioreq(dm, 0, &req);
            if (plain_read)
                FUZZ_CHECK(req.data >> (8 * req.size) == 0);
            break;
        }
        case 1: {
            bool quit;

            if (pos >= size)
                goto out;
            size_t len = data[pos++];
            if (len > size - pos)
                len = size - pos;
            /* No processes from a fuzzer: the qemu device type stays out. */
            if (!memmem(data + pos, len, "qemu", 4)) {
                char *r = dm_control_execute(dm, (const char *)data + pos, len, &quit);

                FUZZ_CHECK(r && r[0] == '{');
                g_free(r);
            }
            pos += len;
            break;
        }
        case 2: {
            GByteArray *img = g_byte_array_new();

            if (size - pos < 2) {
                g_byte_array_free(img, TRUE);
                goto out;
            }
            unsigned off = (unsigned)data[pos] | (unsigned)data[pos + 1] << 8;
            pos += 2;
            FUZZ_CHECK(dm_save(dm, img) == 0);
            if (img->len)
                img->data[off % img->len] ^= 0x5a;
            if (dm_restore(dm, img->data, img->len) < 0) {
                /* refused as a whole or in part: the devices stay usable */
            }
            g_byte_array_free(img, TRUE);
            break;
        }
        default:
            dm_reset(dm);
            break;
        }
    }
out:
    dm_destroy(dm);
    event_base_free(base);
    return 0;
}
