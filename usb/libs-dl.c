// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm's stand-ins for the libusb and usbredir functions Ferry calls,
 * so that ferry-dm does not load those libraries (and libudev, libpthread
 * with them) unless USB is wanted: a guest with the default devices never
 * touches them, and each loaded library costs its relocated and data pages
 * (private dirty) and its text (RSS).  Compiled into the ferry-dm
 * executable only: its definitions come before every library on the link
 * line, so with --as-needed the linker records no DT_NEEDED for libusb,
 * libusbredirhost or libusbredirparser.  Other programs (the ferry CLI,
 * tests) link the libraries as usual and never see this file.
 *
 * usb_libs_load() (usb/libs.c) loads the libraries (RTLD_GLOBAL) before
 * confinement when the configuration wants USB (companion/dm-usb.c); each
 * stand-in finds its function by name on its first call (dlsym makes no
 * system call: fine under seccomp) and jumps there.  A call before the
 * load is a bug in ferry-dm: it says which function and aborts.
 *
 * The stand-ins are hidden: libusbredirhost's own references to libusb go
 * straight to libusb.  libusb_reset_device, libusb_set_auto_detach_kernel_
 * driver, libusb_cancel_transfer and libusb_set_interface_alt_setting are
 * not here: usb/redir.c defines them (its handover interposition, exported
 * by ferry-dm's link line) and finds libusb's through RTLD_NEXT.
 *
 * The list is what the ferry-dm link needs from these libraries (nm -D
 * --undefined-only on a build without this file); a function Ferry starts
 * calling shows up as a new DT_NEEDED, which tests/devmodel's dm-needed
 * test reports.  Each prototype is checked against the library's header.
 */
#include <dlfcn.h>
#include <libusb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <usbredirfilter.h>
#include <usbredirhost.h>

static void *usb_dl_find(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);

    if (!f) {
        fprintf(stderr, "ferry-dm: %s called but the USB libraries are not loaded "
                "(usb_libs_load() before confinement): a bug\n", name);
        abort();
    }
    return f;
}

/* One stand-in: RET NAME(PARAMS) { return real NAME(ARGS); } */
#define USB_DL(ret, name, params, args)                                                     \
    __attribute__((visibility("hidden"))) ret LIBUSB_CALL name params                       \
    {                                                                                       \
        static __typeof__(&name) real;                                                      \
        if (!real)                                                                          \
            real = (__typeof__(&name))usb_dl_find(#name);                                   \
        return real args;                                                                   \
    }
/* the same for a function that returns nothing */
#define USB_DL_VOID(name, params, args)                                                     \
    __attribute__((visibility("hidden"))) void LIBUSB_CALL name params                      \
    {                                                                                       \
        static __typeof__(&name) real;                                                      \
        if (!real)                                                                          \
            real = (__typeof__(&name))usb_dl_find(#name);                                   \
        real args;                                                                          \
    }
/* the same, for functions without LIBUSB_CALL (usbredir's) */
#define USBREDIR_DL(ret, name, params, args)                                                \
    __attribute__((visibility("hidden"))) ret name params                                   \
    {                                                                                       \
        static __typeof__(&name) real;                                                      \
        if (!real)                                                                          \
            real = (__typeof__(&name))usb_dl_find(#name);                                   \
        return real args;                                                                   \
    }

#define USBREDIR_DL_VOID(name, params, args)                                                \
    __attribute__((visibility("hidden"))) void name params                                  \
    {                                                                                       \
        static __typeof__(&name) real;                                                      \
        if (!real)                                                                          \
            real = (__typeof__(&name))usb_dl_find(#name);                                   \
        real args;                                                                          \
    }

/* libusb-1.0 */
USB_DL(int, libusb_init, (libusb_context **ctx), (ctx))
USB_DL_VOID(libusb_exit, (libusb_context *ctx), (ctx))
USB_DL(const char *, libusb_strerror, (int errcode), (errcode))
USB_DL(int, libusb_has_capability, (uint32_t capability), (capability))
USB_DL(ssize_t, libusb_get_device_list, (libusb_context *ctx, libusb_device ***list),
       (ctx, list))
USB_DL_VOID(libusb_free_device_list, (libusb_device **list, int unref_devices),
       (list, unref_devices))
USB_DL(libusb_device *, libusb_ref_device, (libusb_device *dev), (dev))
USB_DL_VOID(libusb_unref_device, (libusb_device *dev), (dev))
USB_DL(int, libusb_get_device_descriptor,
       (libusb_device *dev, struct libusb_device_descriptor *desc), (dev, desc))
USB_DL(int, libusb_get_active_config_descriptor,
       (libusb_device *dev, struct libusb_config_descriptor **config), (dev, config))
USB_DL(int, libusb_get_config_descriptor,
       (libusb_device *dev, uint8_t config_index, struct libusb_config_descriptor **config),
       (dev, config_index, config))
USB_DL_VOID(libusb_free_config_descriptor, (struct libusb_config_descriptor *config), (config))
USB_DL(uint8_t, libusb_get_bus_number, (libusb_device *dev), (dev))
USB_DL(uint8_t, libusb_get_device_address, (libusb_device *dev), (dev))
USB_DL(int, libusb_get_device_speed, (libusb_device *dev), (dev))
USB_DL(int, libusb_get_port_numbers, (libusb_device *dev, uint8_t *port_numbers,
                                      int port_numbers_len), (dev, port_numbers, port_numbers_len))
USB_DL(libusb_device *, libusb_get_parent, (libusb_device *dev), (dev))
USB_DL(int, libusb_open, (libusb_device *dev, libusb_device_handle **dev_handle),
       (dev, dev_handle))
USB_DL(int, libusb_wrap_sys_device, (libusb_context *ctx, intptr_t sys_dev,
                                     libusb_device_handle **dev_handle), (ctx, sys_dev, dev_handle))
USB_DL_VOID(libusb_close, (libusb_device_handle *dev_handle), (dev_handle))
USB_DL(libusb_device *, libusb_get_device, (libusb_device_handle *dev_handle), (dev_handle))
USB_DL(int, libusb_get_string_descriptor_ascii, (libusb_device_handle *dev_handle,
       uint8_t desc_index, unsigned char *data, int length), (dev_handle, desc_index, data, length))
USB_DL(int, libusb_handle_events_timeout_completed,
       (libusb_context *ctx, struct timeval *tv, int *completed), (ctx, tv, completed))
USB_DL(int, libusb_get_next_timeout, (libusb_context *ctx, struct timeval *tv), (ctx, tv))
USB_DL(const struct libusb_pollfd **, libusb_get_pollfds, (libusb_context *ctx), (ctx))
USB_DL_VOID(libusb_free_pollfds, (const struct libusb_pollfd **pollfds), (pollfds))
USB_DL_VOID(libusb_set_pollfd_notifiers, (libusb_context *ctx, libusb_pollfd_added_cb added_cb,
       libusb_pollfd_removed_cb removed_cb, void *user_data),
       (ctx, added_cb, removed_cb, user_data))
USB_DL(int, libusb_hotplug_register_callback, (libusb_context *ctx, int events, int flags,
       int vendor_id, int product_id, int dev_class, libusb_hotplug_callback_fn cb_fn,
       void *user_data, libusb_hotplug_callback_handle *callback_handle),
       (ctx, events, flags, vendor_id, product_id, dev_class, cb_fn, user_data, callback_handle))
USB_DL_VOID(libusb_hotplug_deregister_callback,
       (libusb_context *ctx, libusb_hotplug_callback_handle callback_handle),
       (ctx, callback_handle))

/* Variadic: of libusb 1.0.26's options only LOG_LEVEL takes an argument (an int). */
__attribute__((visibility("hidden"))) int LIBUSB_CALL
libusb_set_option(libusb_context *ctx, enum libusb_option option, ...)
{
    static __typeof__(&libusb_set_option) real;
    va_list ap;
    int rc;

    if (!real)
        real = (__typeof__(&libusb_set_option))usb_dl_find("libusb_set_option");
    va_start(ap, option);
    switch (option) {
    case LIBUSB_OPTION_LOG_LEVEL:
        rc = real(ctx, option, va_arg(ap, int));
        break;
    default:
        rc = real(ctx, option);
        break;
    }
    va_end(ap);
    return rc;
}

/* libusbredirhost */
USBREDIR_DL(struct usbredirhost *, usbredirhost_open_full, (libusb_context *usb_ctx,
            libusb_device_handle *usb_dev_handle, usbredirparser_log log_func,
            usbredirparser_read read_guest_data_func, usbredirparser_write write_guest_data_func,
            usbredirhost_flush_writes flush_writes_func, usbredirparser_alloc_lock alloc_lock_func,
            usbredirparser_lock lock_func, usbredirparser_unlock unlock_func,
            usbredirparser_free_lock free_lock_func, void *func_priv, const char *version,
            int verbose, int flags),
            (usb_ctx, usb_dev_handle, log_func, read_guest_data_func, write_guest_data_func,
             flush_writes_func, alloc_lock_func, lock_func, unlock_func, free_lock_func,
             func_priv, version, verbose, flags))
USBREDIR_DL_VOID(usbredirhost_close, (struct usbredirhost *host), (host))
USBREDIR_DL(int, usbredirhost_set_device,
            (struct usbredirhost *host, libusb_device_handle *usb_dev_handle),
            (host, usb_dev_handle))
USBREDIR_DL_VOID(usbredirhost_set_buffered_output_size_cb, (struct usbredirhost *host,
            usbredirhost_buffered_output_size buffered_output_size_func),
            (host, buffered_output_size_func))
USBREDIR_DL(int, usbredirhost_read_guest_data, (struct usbredirhost *host), (host))
USBREDIR_DL(int, usbredirhost_write_guest_data, (struct usbredirhost *host), (host))
USBREDIR_DL_VOID(usbredirhost_free_write_buffer, (struct usbredirhost *host, uint8_t *data),
            (host, data))

/* libusbredirparser's filters */
USBREDIR_DL(int, usbredirfilter_string_to_rules, (const char *filter_str, const char *token_sep,
            const char *rule_sep, struct usbredirfilter_rule **rules_ret, int *rules_count_ret),
            (filter_str, token_sep, rule_sep, rules_ret, rules_count_ret))
USBREDIR_DL(char *, usbredirfilter_rules_to_string, (const struct usbredirfilter_rule *rules,
            int rules_count, const char *token_sep, const char *rule_sep),
            (rules, rules_count, token_sep, rule_sep))
USBREDIR_DL(int, usbredirfilter_check, (const struct usbredirfilter_rule *rules, int rules_count,
            uint8_t device_class, uint8_t device_subclass, uint8_t device_protocol,
            uint8_t *interface_class, uint8_t *interface_subclass, uint8_t *interface_protocol,
            int interface_count, uint16_t vendor_id, uint16_t product_id,
            uint16_t device_version_bcd, int flags),
            (rules, rules_count, device_class, device_subclass, device_protocol, interface_class,
             interface_subclass, interface_protocol, interface_count, vendor_id, product_id,
             device_version_bcd, flags))
USBREDIR_DL_VOID(usbredirfilter_free, (void *ptr), (ptr))
