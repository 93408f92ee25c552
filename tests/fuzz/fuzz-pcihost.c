/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for libferry-pcihost: hostile config space (a device's
 * capability chains, extended capabilities, BARs, bridge bus numbers are
 * what the hardware says, and a passed-through device can say anything).
 * The input becomes an `lspci -xxxx` dump of up to four devices that
 * libpci's dump method reads; then every device gets a readiness report.
 * Input: byte 0 = number of devices - 1 (mod 4); then per device 2 bytes
 * (bus, devfn) followed by its config bytes, the rest split evenly, at most
 * 4096 each.  Nothing on disk is touched: sysfs/proc roots do not exist.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pci/host/pcihost.h"

#define FUZZ_DEVS_MAX 4
#define FUZZ_CFG_MAX  4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void dump_dev(FILE *f, uint8_t bus, uint8_t devfn, const uint8_t *cfg, size_t len)
{
    if (len > FUZZ_CFG_MAX)
        len = FUZZ_CFG_MAX;
    fprintf(f, "%02x:%02x.%x Device\n", bus, devfn >> 3, devfn & 7);
    for (size_t off = 0; off < len; off += 16) {
        fprintf(f, "%02zx:", off);
        for (size_t i = off; i < off + 16 && i < len; i++)
            fprintf(f, " %02x", cfg[i]);
        fputc('\n', f);
    }
    fputc('\n', f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ferry_pcihost_config cfg = {
        .sysfs_root = "/nonexistent/sys", .proc_root = "/nonexistent/proc",
        .state_dir = "/nonexistent/state", .ids_file = "/nonexistent/pci.ids",
    };
    struct ferry_pcihost_report *rep;
    struct ferry_pcihost *h;
    char path[64];
    size_t ndev, each;
    FILE *f;
    int fd;

    if (size < 1)
        return 0;
    ndev = (size_t)(data[0] % FUZZ_DEVS_MAX) + 1;
    data++;
    size--;
    if (size < ndev * 2)
        return 0;
    each = size / ndev;
    fd = memfd_create("fuzz-pcihost", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    f = fdopen(dup(fd), "w");
    if (!f) {
        close(fd);
        return 0;
    }
    for (size_t d = 0; d < ndev; d++) {
        const uint8_t *p = data + d * each;
        dump_dev(f, p[0], p[1], p + 2, each - 2);
    }
    fclose(f);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    cfg.dump_file = path;

    h = pcihost_open(NULL, &cfg);
    rep = malloc(sizeof(*rep));
    if (h && rep && pcihost_scan(h) == 0) {
        for (size_t i = 0; i < pcihost_dev_count(h); i++) {
            const struct ferry_pcihost_dev *d = pcihost_dev_get(h, i);
            struct ferry_pci_addr a = d->addr;

            if (pcihost_check(h, &a, rep) != 0)
                abort();    /* every scanned device must be checkable */
            if (d->ncaps > FERRY_PCIHOST_CAPS_MAX || rep->n > FERRY_PCIHOST_FINDINGS_MAX)
                abort();
            for (size_t c = 0; c < d->ncaps; c++)
                if (!pcihost_cap_name(&d->caps[c]))
                    abort();
        }
    }
    free(rep);
    pcihost_close(h);
    close(fd);
    return 0;
}
