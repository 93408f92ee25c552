// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm's stand-ins for the libpci functions pci/host/pcihost.c calls,
 * so that ferry-dm loads libpci (and libudev and libz with it) only for a
 * config's [pci] devices: pcihost_scan loads it (dlopen, RTLD_GLOBAL),
 * before confinement, the only way into libpci.  Compiled into the ferry-dm
 * executable only, as usb/libs-dl.c (read it for how and why); hidden, each
 * finds its function by name on first call and aborts, naming it, if
 * libpci is not loaded (a bug).  The list is what the ferry-dm link needs
 * from libpci; tests/devmodel's dm-needed reports a new one.
 */
#include <dlfcn.h>
#include <pci/pci.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void *pci_dl_find(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);

    if (!f) {
        fprintf(stderr, "ferry-dm: %s called but libpci is not loaded (pcihost_scan loads "
                "it): a bug\n", name);
        abort();
    }
    return f;
}

#define PCI_DL_REAL(name)                                                                   \
    static __typeof__(&name) real;                                                          \
    if (!real)                                                                              \
        real = (__typeof__(&name))pci_dl_find(#name)

__attribute__((visibility("hidden"))) struct pci_access *pci_alloc(void)
{
    PCI_DL_REAL(pci_alloc);
    return real();
}

__attribute__((visibility("hidden"))) void pci_init(struct pci_access *a)
{
    PCI_DL_REAL(pci_init);
    real(a);
}

__attribute__((visibility("hidden"))) void pci_cleanup(struct pci_access *a)
{
    PCI_DL_REAL(pci_cleanup);
    real(a);
}

__attribute__((visibility("hidden"))) void pci_scan_bus(struct pci_access *a)
{
    PCI_DL_REAL(pci_scan_bus);
    real(a);
}

__attribute__((visibility("hidden"))) int pci_set_param(struct pci_access *a, char *param,
                                                        char *value)
{
    PCI_DL_REAL(pci_set_param);
    return real(a, param, value);
}

__attribute__((visibility("hidden"))) void pci_set_name_list_path(struct pci_access *a,
                                                                  char *name, int to_be_freed)
{
    PCI_DL_REAL(pci_set_name_list_path);
    real(a, name, to_be_freed);
}

__attribute__((visibility("hidden"))) int pci_fill_info(struct pci_dev *d, int flags)
{
    PCI_DL_REAL(pci_fill_info);
    return real(d, flags);
}

__attribute__((visibility("hidden"))) int pci_read_block(struct pci_dev *d, int pos, u8 *buf,
                                                         int len)
{
    PCI_DL_REAL(pci_read_block);
    return real(d, pos, buf, len);
}

/*
 * Variadic: the IDs that follow flags, by what is looked up (pci.h, enum
 * pci_lookup_mode): VENDOR vendor; DEVICE (with or without VENDOR) vendor,
 * device; SUBSYSTEM|VENDOR subvendor; SUBSYSTEM|DEVICE vendor, device,
 * subvendor, subdevice; CLASS class; PROGIF class, prog-if.
 */
__attribute__((visibility("hidden"))) char *pci_lookup_name(struct pci_access *a, char *buf,
                                                            int size, int flags, ...)
{
    int id[4] = { 0 }, n;
    va_list ap;

    PCI_DL_REAL(pci_lookup_name);
    switch (flags & 0xffff) {
    case PCI_LOOKUP_VENDOR:
    case PCI_LOOKUP_CLASS:
    case PCI_LOOKUP_SUBSYSTEM | PCI_LOOKUP_VENDOR:
        n = 1;
        break;
    case PCI_LOOKUP_DEVICE:
    case PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE:
    case PCI_LOOKUP_PROGIF:
    case PCI_LOOKUP_CLASS | PCI_LOOKUP_PROGIF:
        n = 2;
        break;
    case PCI_LOOKUP_SUBSYSTEM | PCI_LOOKUP_DEVICE:
    case PCI_LOOKUP_SUBSYSTEM | PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE:
        n = 4;
        break;
    default:
        n = 0;
        break;
    }
    va_start(ap, flags);
    for (int i = 0; i < n; i++)
        id[i] = va_arg(ap, int);
    va_end(ap);
    return real(a, buf, size, flags, id[0], id[1], id[2], id[3]);
}
