// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The poke device as a ferry-dm device type, built only into the test
 * program ferry-dm-poke (never into ferry-dm): it decodes one port
 * (port=, default 0x3fd, COM1's LSR) and reads it as an idle UART (0x60)
 * until the test arms it by writing one byte to a FIFO (arm=PATH, opened
 * before confinement); the guest access after that makes it try one
 * forbidden thing (try=open-shadow|execve|socket-inet|ptrace) in the
 * middle of handling the ioreq, as a device model exploited by its guest
 * would.  Confined, the filter ends ferry-dm there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devmodel/dm.h"

struct poke_dev {
    struct ferry_dm_device *dev;
    int arm_fd;
    const char *try;
    bool armed;
};

static int32_t poke_dev_try(const char *what)
{
    int fd;

    if (!strcmp(what, "open-shadow")) {
        fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
        return fd < 0 ? -errno : 0;
    }
    if (!strcmp(what, "execve")) {
        char *argv[] = { "ferry-poke", NULL };
        execve("/nonexistent/ferry-poke", argv, argv + 1);
        return -errno;
    }
    if (!strcmp(what, "socket-inet")) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0)
            close(fd);
        return fd < 0 ? -errno : 0;
    }
    if (!strcmp(what, "ptrace"))
        return ptrace(PTRACE_ATTACH, getppid(), 0, 0) < 0 ? -errno : 0;
    return -EINVAL;
}

static uint64_t poke_dev_read(void *opaque, uint64_t off, unsigned size)
{
    struct poke_dev *p = opaque;
    char c;

    if (p->armed) {
        int32_t rc = poke_dev_try(p->try);

        dm_dev_log(p->dev, FERRY_LOG_WARNING, "tried %s: %s (still alive)", p->try,
                         rc ? strerror(-rc) : "done");
        p->armed = false;
    } else if (read(p->arm_fd, &c, 1) == 1) {
        p->armed = true;
    }
    return 0x60;
}

static void poke_dev_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
}

static const struct ferry_dm_region_ops poke_dev_ops = {
    .read = poke_dev_read,
    .write = poke_dev_write,
    .max_size = 1,
};

static int poke_dev_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                         void **state)
{
    static const char *const known[] = { "port", "arm", "try", NULL };
    static const char *const tries[] = { "open-shadow", "execve", "socket-inet", "ptrace", NULL };
    const char *arm = dm_opts_get(opts, "arm");
    const char *try = dm_opts_get(opts, "try");
    struct poke_dev *p;
    uint64_t port;
    int rc;

    if (dm_opts_check(opts, known, NULL) < 0 ||
        dm_opts_get_u64(opts, "port", 0x3fd, 0xffff, &port) < 0 || !arm || !try ||
        !g_strv_contains(tries, try)) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "options: arm=FIFO, try=open-shadow|execve|"
                         "socket-inet|ptrace, port=N");
        return -EINVAL;
    }
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->dev = dev;
    p->try = g_intern_string(try);
    p->arm_fd = open(arm, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (p->arm_fd < 0) {
        rc = -errno;
        dm_dev_log(dev, FERRY_LOG_ERROR, "cannot open %s: %s", arm, strerror(-rc));
        free(p);
        return rc;
    }
    rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, port, 1, &poke_dev_ops, p, 0, NULL);
    if (rc < 0) {
        close(p->arm_fd);
        free(p);
        return rc;
    }
    *state = p;
    return 0;
}

static void poke_dev_exit(void *state)
{
    struct poke_dev *p = state;

    close(p->arm_fd);
    free(p);
}

/* Nothing beyond the base list: what it tries is forbidden on purpose. */
FERRY_SYSCALL_LIST_NONE(poke_dev_syscalls, "poke", "test device");

const struct ferry_dm_device_type poke_dev_device = {
    .name = "poke",
    .desc = "TEST ONLY: tries a forbidden syscall when armed and read by the guest",
    .syscalls = &poke_dev_syscalls,
    .init = poke_dev_init,
    .exit = poke_dev_exit,
};
FERRY_DM_DEVICE_TYPE(poke_dev_device)
