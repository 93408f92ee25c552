// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Debug exit port for test guests (QEMU's isa-debug-exit idea), port 0xf4
 * by default (ferry-hv serves its own in-process exit port at 0x501).
 * Writing v (1, 2 or 4 bytes) ends the guest with status v: it asks the
 * hypervisor for ioreq_server_shutdown(POWEROFF, v), which ferry-hv turns
 * into a power-off (v = 0) or its debug-exit status v (0..63).  Reads
 * return all ones.  Unlike the in-process port, this one proves that the
 * write travelled through ferry-dm.
 * The region is 4 ports wide so that a dword write at the port is one
 * access; writes starting at port+1..+3 are ignored.
 *
 * Options: port=0xf4
 */
#include <errno.h>
#include <stdlib.h>

#include "devmodel/dm.h"

struct debug_exit {
    struct ferry_dm_device *dev;
    int64_t last;               /* -1 until written */
};

static void dx_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct debug_exit *dx = opaque;
    uint32_t code = (uint32_t)val;

    if (off != 0)
        return;     /* only accesses starting at the port count */

    dx->last = code;
    dm_dev_guest_log_at(dx->dev, FERRY_LOG_INFO, "guest exits with status %u", code);
    dm_request_shutdown(dm_device_dm(dx->dev), IOREQ_SHUTDOWN_POWEROFF, code);
}

static const struct ferry_dm_region_ops dx_ops = {
    .write = dx_write,
    .max_size = 4,
};

static int dx_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts, void **state)
{
    static const char *const known[] = { "port", NULL };
    struct debug_exit *dx;
    uint64_t port;
    int rc;
    const char *bad = NULL;

    if (dm_opts_check(opts, known, &bad) < 0 ||
        dm_opts_get_u64(opts, "port", 0xf4, 0xfffc, &port) < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "%s%s%soptions: port=N (0..0xfffc)",
                         bad ? "unknown option " : "", bad ? bad : "", bad ? "; " : "");
        return -EINVAL;
    }
    dx = calloc(1, sizeof(*dx));
    if (!dx)
        return -ENOMEM;
    dx->dev = dev;
    dx->last = -1;
    rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, port, 4, &dx_ops, dx, 0, NULL);
    if (rc < 0) {
        free(dx);
        return rc;
    }
    *state = dx;
    return 0;
}

static void dx_exit(void *state)
{
    free(state);
}

static void dx_query(void *state, json_t *b)
{
    struct debug_exit *dx = state;

    json_object_set_new(b, "last-status", json_integer(dx->last));
}

FERRY_SYSCALL_LIST_NONE(debug_exit_syscalls, "debug-exit",
    "the exit is a shutdown message to the hypervisor");

const struct ferry_dm_device_type debug_exit_device = {
    .name = "debug-exit",
    .desc = "debug exit port for tests (port=0xf4): write v, the guest exits with v",
    .hotplug = true,
    .syscalls = &debug_exit_syscalls,
    .init = dx_init,
    .exit = dx_exit,
    .query = dx_query,
};
FERRY_DM_DEVICE_TYPE(debug_exit_device)
