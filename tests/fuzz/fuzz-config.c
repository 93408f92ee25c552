// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: every GKeyFile config Ferry reads, from one hostile
 * file: ferry-dm's [dm], [qemu] and [qemu:ID] groups and its device list
 * (devmodel/dm-config.c), [usb] (dm-usb.c; its policy rules and device specs
 * through libferry-usb), [pci] (pci/host/pci-config.c, dm-vfio.c), the
 * guest config of `ferry run` ([guest], cli/cmd-run.c) and the config of
 * `ferry acpi` ([guest], [acpi], cli/cmd-acpi.c).  The input is written to
 * a file (the readers take paths; relative paths in it resolve next to it)
 * and every reader runs on it: each must accept it or refuse it, never
 * crash or leak.  config/read-*.c call the readers: ferry-dm's through
 * its module, the CLI's with their sources compiled in (static there).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "companion/dm-usb.h"
#include "companion/dm-vfio.h"
#include "pci/host/pci-config.h"
#include "usb/ferry-usb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_config_dm(const char *path);
int fuzz_config_run(const char *path);
int fuzz_config_acpi(const char *path);

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)

static char dir[] = "/tmp/ferry-fuzz-config-XXXXXX";
static char path[128];

static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

static void usb_group(void)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *policy = NULL;
    g_auto(GStrv) devices = NULL;
    char err[FERRY_USB_ERR_MAX];

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, NULL))
        return;
    policy = g_key_file_get_string(kf, "usb", "policy", NULL);
    if (policy) {
        struct ferry_usb_policy *p = NULL;

        err[0] = 0;
        if (usb_policy_new(policy, &p, err, sizeof(err)) == 0)
            usb_policy_free(p);
        else
            FUZZ_CHECK(err[0]);     /* a refusal says why */
    }
    devices = g_key_file_get_string_list(kf, "usb", "devices", NULL, NULL);
    for (gsize i = 0; devices && devices[i]; i++) {
        struct ferry_usb_spec spec;
        char back[256];

        if (usb_spec_parse(g_strstrip(devices[i]), &spec) == 0)
            usb_spec_format(&spec, back, sizeof(back));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ferry_pci_config pc;
    struct companion_vfio *v = NULL;
    char err[FERRY_PCI_CONFIG_ERR_MAX];
    char *qmp = NULL;
    int fd;

    if (!path[0]) {
        FUZZ_CHECK(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/guest.conf", dir);
        atexit(cleanup);
    }
    if (size > 1 << 16)
        return 0;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0 && write(fd, data, size) == (ssize_t)size);
    close(fd);

    (void)fuzz_config_dm(path);
    (void)fuzz_config_run(path);
    (void)fuzz_config_acpi(path);
    err[0] = 0;
    if (pcihost_config_load(path, &pc, err, sizeof(err)) < 0)
        FUZZ_CHECK(err[0]);
    if (companion_vfio_load(path, &v) == 0) {
        (void)companion_vfio_config_qmp(v);
        (void)companion_vfio_has_devices(v);
        companion_vfio_free(v);
    }
    (void)companion_usb_wanted(NULL, path);
    if (companion_usb_config_qmp(path, &qmp) == 0)
        g_free(qmp);
    usb_group();
    return 0;
}
