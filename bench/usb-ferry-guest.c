// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * usb-ferry-guest: bulk loopback from inside a Ferry guest against direct
 * libusb on the host, on the same device, in the same run.
 *
 * Ferry guest: `ferry run --usb 1d50:6103 --cmdline bench` of the test guest
 * tests/devmodel/guests/dm-xhci.c: its own xHCI driver on QEMU's qemu-xhci
 * (a remote QEMU behind ferry-dm's xhci device), the device a usb-redir
 * served by ferry-dm's USB service.  After one untimed 1 MiB loopback it
 * times REPS more with the ACPI PM timer, each 32 KiB bulk OUT then 32 KiB
 * bulk IN (one TRB each, interrupt-driven), and prints one line per
 * repetition.  Direct: libusb's synchronous API in this process, the same
 * 32 KiB OUT then IN to 1 MiB, REPS times, after one untimed round.
 *
 * Device: the simulator's vendor loopback (tests/usb/sim, umockdev), so
 * both sides are bound by the simulator (an RPC per usbfs ioctl): the
 * ratio says what the guest's path adds on top of a slow device, not what
 * it would cost on real hardware.  Run: umockdev-wrapper
 * build/bench/usb-ferry-guest (as root: the simulator's testbed is root's;
 * ferry-dm runs unconfined, as in the test dm-guest-xhci).
 * Last line: the ratio guest/direct of the median MiB/s.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <libusb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "usbsim.h"

#define REPS        5
#define CHUNK       (32u * 1024u)
#define TOTAL       (1024u * 1024u)
#define PM_HZ       3579545.0
#define TIMEOUT_S   900

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One 1 MiB loopback through libusb; 0 or -1 (said on stderr). */
static int direct_round(libusb_device_handle *h, uint8_t *out, uint8_t *in, uint32_t seed)
{
    for (unsigned done = 0; done < TOTAL; done += CHUNK) {
        int n = 0, r;

        for (unsigned i = 0; i < CHUNK; i++) {
            seed = seed * 1103515245u + 12345u;
            out[i] = (uint8_t)(seed >> 16);
        }
        r = libusb_bulk_transfer(h, 0x01, out, CHUNK, &n, 10000);
        if (r < 0 || (unsigned)n != CHUNK) {
            fprintf(stderr, "usb-ferry-guest: direct bulk out: %s\n", libusb_error_name(r));
            return -1;
        }
        for (unsigned got = 0; got < CHUNK; got += (unsigned)n) {
            r = libusb_bulk_transfer(h, 0x82, in + got, (int)(CHUNK - got), &n, 10000);
            if (r < 0) {
                fprintf(stderr, "usb-ferry-guest: direct bulk in: %s\n", libusb_error_name(r));
                return -1;
            }
        }
        if (memcmp(in, out, CHUNK) != 0) {
            fprintf(stderr, "usb-ferry-guest: direct loopback data differs\n");
            return -1;
        }
    }
    return 0;
}

static int direct(double *mib_s)
{
    libusb_context *ctx = NULL;
    libusb_device_handle *h;
    uint8_t *out = g_malloc(CHUNK), *in = g_malloc(CHUNK);
    int rc = -1;

    if (libusb_init(&ctx) < 0) {
        fprintf(stderr, "usb-ferry-guest: libusb_init failed\n");
        goto out;
    }
    h = libusb_open_device_with_vid_pid(ctx, USBSIM_VID, USBSIM_PID_VENDOR);
    if (!h) {
        fprintf(stderr, "usb-ferry-guest: cannot open %04x:%04x with libusb\n", USBSIM_VID,
                USBSIM_PID_VENDOR);
        goto out;
    }
    libusb_set_auto_detach_kernel_driver(h, 1);
    if (libusb_claim_interface(h, 0) < 0 || direct_round(h, out, in, 1) < 0) {
        fprintf(stderr, "usb-ferry-guest: direct warm-up failed\n");
        libusb_close(h);
        goto out;
    }
    rc = 0;
    for (unsigned r = 0; r < REPS && rc == 0; r++) {
        uint64_t t0 = bench_now_ns();

        rc = direct_round(h, out, in, 100 + r);
        mib_s[r] = TOTAL / 1048576.0 / ((bench_now_ns() - t0) / 1e9);
    }
    libusb_release_interface(h, 0);
    libusb_close(h);
out:
    if (ctx)
        libusb_exit(ctx);
    g_free(out);
    g_free(in);
    return rc;
}

/* The guest's figures: REPS "bench-loop bytes B chunk C pm-ticks T" lines. */
static int guest(const char *ferry, const char *dm, const char *image, double *mib_s)
{
    g_autofree char *dir = g_dir_make_tmp("ferry-bench-xhci-XXXXXX", NULL);
    g_autofree char *wrapper = g_build_filename(dir, "ferry-dm", NULL);
    const char *preload = g_getenv("LD_PRELOAD");
    /* as tests/devmodel/xhci-e2e.c: ferry-hv outside umockdev's preload, ferry-dm in it */
    g_autofree char *text = g_strdup_printf("#!/bin/sh\nLD_PRELOAD='%s' EVENT_NOEPOLL=1 "
                                            "exec '%s' \"$@\"\n", preload ? preload : "", dm);
    g_auto(GStrv) envp = g_environ_unsetenv(g_get_environ(), "LD_PRELOAD");
    const char *argv[] = {
        ferry, "run", "--image", image, "--entry", "pvh", "--memory", "64M", "--cmdline",
        "bench", "--dm", wrapper, "--dm-arg=--user=root", "--dm-arg=--seccomp=off",
        "--dm-arg=--no-namespaces", "--dm-arg=--serial=stdout", "--usb", "1d50:6103", NULL,
    };
    g_autoptr(GError) err = NULL;
    GString *all = g_string_new(NULL);
    unsigned n = 0;
    int out_fd, status = 0;
    GPid pid;
    char buf[4096];

    if (!dir || !g_file_set_contents(wrapper, text, -1, NULL) || chmod(wrapper, 0755) < 0) {
        fprintf(stderr, "usb-ferry-guest: cannot write the ferry-dm wrapper\n");
        return -1;
    }
    if (!g_spawn_async_with_pipes(NULL, (char **)argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                  NULL, &pid, NULL, &out_fd, NULL, &err)) {
        fprintf(stderr, "usb-ferry-guest: cannot run %s: %s\n", ferry, err->message);
        return -1;
    }
    for (gint64 end = g_get_monotonic_time() + TIMEOUT_S * G_USEC_PER_SEC;;) {
        struct pollfd p = { out_fd, POLLIN, 0 };
        int left = (int)((end - g_get_monotonic_time()) / 1000);
        ssize_t r;

        if (left <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        if (poll(&p, 1, left) <= 0)
            continue;
        r = read(out_fd, buf, sizeof(buf));
        if (r <= 0)
            break;
        g_string_append_len(all, buf, r);
    }
    waitpid(pid, &status, 0);
    close(out_fd);
    unlink(wrapper);
    rmdir(dir);
    for (const char *l = all->str; (l = strstr(l, "bench-loop bytes ")) && n < REPS; l++) {
        unsigned long bytes, chunk, ticks;

        if (sscanf(l, "bench-loop bytes %lu chunk %lu pm-ticks %lu", &bytes, &chunk,
                   &ticks) == 3 && ticks)
            mib_s[n++] = bytes / 1048576.0 / (ticks / PM_HZ);
    }
    if (n != REPS || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "usb-ferry-guest: the guest gave %u of %u figures (exit status 0x%x):"
                "\n%s", n, REPS, status, all->str);
        g_string_free(all, TRUE);
        return -1;
    }
    g_string_free(all, TRUE);
    return 0;
}

int main(int argc, char **argv)
{
    double g[REPS], d[REPS], gm, dm;
    struct usbsim *sim;

    (void)argc;
    if (!(sim = usbsim_new()))
        return 1;       /* said why: not under umockdev-wrapper */
    if (!usbsim_add(sim, USBSIM_VENDOR, "1-2", "BENCH0001")) {
        fprintf(stderr, "usb-ferry-guest: cannot add the simulated loopback device\n");
        return 1;
    }
    bench_print_header();
    printf("device: simulated vendor loopback (umockdev): both sides are simulator-bound\n");
    printf("transfer: %u KiB OUT then %u KiB IN, %u KiB per round, %d rounds each\n",
           CHUNK / 1024, CHUNK / 1024, TOTAL / 1024, REPS);
    fflush(stdout);
    if (direct(d) < 0 || guest(FERRY_CLI_PATH, FERRY_DM_PATH, FERRY_XHCI_GUEST, g) < 0)
        return 1;
    (void)argv;
    gm = median(g, REPS);
    dm = median(d, REPS);
    printf("direct libusb: %.2f MiB/s (median)\n", dm);
    printf("ferry guest (xhci in a remote QEMU, usb-redir, ferry-dm): %.2f MiB/s (median)\n", gm);
    printf("ratio guest/direct: %.3f\n", gm / dm);
    usbsim_free(sim);
    return 0;
}
