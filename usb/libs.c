// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * usb_libs_load (ferry-usb.h): the libraries behind this one, loaded on
 * demand.  ferry-dm does not link them (usb/libs-dl.c has its stand-ins);
 * RTLD_GLOBAL so that the stand-ins' dlsym(RTLD_DEFAULT) and usb/redir.c's
 * RTLD_NEXT find their functions, RTLD_NOW so that nothing is resolved
 * later, under confinement.  The sonames are the libraries' ABI: the ones
 * the linker would record.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

#include "usb/ferry-usb.h"
#include "usb/usb-internal.h"

static const char *const usb_libs[] = {
    "libusb-1.0.so.0",
    "libusbredirparser.so.1",
    "libusbredirhost.so.1",
};

int usb_libs_load(char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(usb_libs) / sizeof(usb_libs[0]); i++) {
        /* a handle per process, never closed: the code stays for good */
        if (!dlopen(usb_libs[i], RTLD_NOW | RTLD_GLOBAL)) {
            const char *why = dlerror();

            snprintf(err, errlen, "cannot load %s: %s", usb_libs[i], why ? why : "unknown error");
            return -ENOENT;
        }
    }
    redir_interpose_init();
    return 0;
}
