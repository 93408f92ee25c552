// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The PIIX/ICH reset control register at port 0xcf9 (byte accesses; the
 * hypervisor decodes dword accesses at 0xcf8 as CONFIG_ADDRESS itself).
 *
 *   bit 1 SYS_RST   hard (1) or soft (0) reset, kept
 *   bit 2 RST_CPU   a 0 -> 1 transition resets the machine; reads 0
 *   bit 3 FULL_RST  kept
 *
 * A reset asks the hypervisor to reboot the guest and resets every device
 * of this device model.  Linux's reboot=pci writes 0x02 then 0x06.
 *
 * Options: port=0xcf9
 */
#include <errno.h>
#include <stdlib.h>

#include "devmodel/dm.h"

#define RCR_SYS_RST     0x02
#define RCR_RST_CPU     0x04
#define RCR_FULL_RST    0x08

struct reset_ctl {
    struct ferry_dm_device *dev;
    uint8_t rcr;
    unsigned resets;
};

static uint64_t rcr_read(void *opaque, uint64_t off, unsigned size)
{
    struct reset_ctl *rc = opaque;

    return rc->rcr;
}

static void rcr_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct reset_ctl *rc = opaque;
    uint8_t v = (uint8_t)val;

    rc->rcr = v & (RCR_SYS_RST | RCR_FULL_RST);
    if (v & RCR_RST_CPU) {
        rc->resets++;
        dm_dev_guest_log_at(rc->dev, FERRY_LOG_INFO, "%s reset through 0xcf9",
                                  (v & (RCR_SYS_RST | RCR_FULL_RST)) ? "hard" : "soft");
        /* Resets every device, this one included (rcr back to 0). */
        dm_request_shutdown(dm_device_dm(rc->dev), IOREQ_SHUTDOWN_REBOOT, 0);
    }
}

static const struct ferry_dm_region_ops rcr_ops = {
    .read = rcr_read,
    .write = rcr_write,
    .max_size = 1,
};

static void rcr_reset(void *state)
{
    struct reset_ctl *rc = state;

    rc->rcr = 0;
}

static int rcr_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                    void **state)
{
    static const char *const known[] = { "port", NULL };
    struct reset_ctl *rc;
    uint64_t port;
    int err;
    const char *bad = NULL;

    if (dm_opts_check(opts, known, &bad) < 0 ||
        dm_opts_get_u64(opts, "port", 0xcf9, 0xffff, &port) < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "%s%s%soptions: port=N (0..0xffff)",
                         bad ? "unknown option " : "", bad ? bad : "", bad ? "; " : "");
        return -EINVAL;
    }
    rc = calloc(1, sizeof(*rc));
    if (!rc)
        return -ENOMEM;
    rc->dev = dev;
    err = dm_region_add(dev, FERRY_DM_SPACE_PORT, port, 1, &rcr_ops, rc, 0, NULL);
    if (err < 0) {
        free(rc);
        return err;
    }
    *state = rc;
    return 0;
}

static void rcr_exit(void *state)
{
    free(state);
}

static void rcr_query(void *state, json_t *b)
{
    struct reset_ctl *rc = state;

    json_object_set_new(b, "resets", json_integer(rc->resets));
}

FERRY_SYSCALL_LIST_NONE(reset_syscalls, "reset",
    "the reset is a message to the hypervisor");

const struct ferry_dm_device_type reset_device = {
    .name = "reset",
    .desc = "reset control register (port=0xcf9): RST_CPU reboots the guest",
    .syscalls = &reset_syscalls,
    .init = rcr_init,
    .exit = rcr_exit,
    .reset = rcr_reset,
    .query = rcr_query,
};
FERRY_DM_DEVICE_TYPE(reset_device)
