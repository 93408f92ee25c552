// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Host USB devices: a libusb context driven by the caller's libevent loop,
 * the device list kept current by libusb's hotplug callbacks, device specs
 * and identities, and usbfs fds handed in by a broker.
 */
#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <libusb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "usb/ferry-usb.h"
#include "usb/usb-internal.h"

struct host_fd {
    int fd;
    struct event *ev;
};

struct host_change {
    bool arrived;
    libusb_device *dev;
};

struct ferry_usb_host {
    struct event_base *base;
    struct ferry_usb_host_ops ops;
    void *opaque;
    libusb_context *ctx;
    bool discover;
    GArray *fds;                     /* struct host_fd */
    struct event *timer;
    struct event *deferred;          /* runs queued hotplug changes */
    GQueue changes;                  /* struct host_change * */
    libusb_hotplug_callback_handle hp;
    bool hp_registered;
    GArray *devs;                    /* struct ferry_usb_devinfo */
    GPtrArray *libdevs;              /* libusb_device *, parallel to devs */
};

#define LOG(h, lvl, ...) ferry_logf((h)->ops.log, (h)->ops.log_opaque, (lvl), "usb: " __VA_ARGS__)

/* ---- the event loop side ------------------------------------------------- */

static void host_arm_timer(struct ferry_usb_host *h)
{
    struct timeval tv;

    if (libusb_get_next_timeout(h->ctx, &tv) == 1)
        event_add(h->timer, &tv);
    else
        event_del(h->timer);
}

void usb_host_pump(struct ferry_usb_host *h)
{
    struct timeval zero = { 0, 0 };

    libusb_handle_events_timeout_completed(h->ctx, &zero, NULL);
    host_arm_timer(h);
}

static void on_libusb_fd(evutil_socket_t fd, short what, void *arg)
{
    usb_host_pump(arg);
}

static void on_libusb_timer(evutil_socket_t fd, short what, void *arg)
{
    usb_host_pump(arg);
}

static void host_fd_add(int fd, short events, void *arg)
{
    struct ferry_usb_host *h = arg;
    struct host_fd hf = { .fd = fd };
    short ev = EV_PERSIST;

    if (events & POLLIN)
        ev |= EV_READ;
    if (events & POLLOUT)
        ev |= EV_WRITE;
    for (guint i = 0; i < h->fds->len; i++) {
        struct host_fd *o = &g_array_index(h->fds, struct host_fd, i);
        if (o->fd == fd) {
            event_free(o->ev);
            g_array_remove_index(h->fds, i);
            break;
        }
    }
    hf.ev = event_new(h->base, fd, ev, on_libusb_fd, h);
    if (!hf.ev) {
        LOG(h, FERRY_LOG_ERROR, "cannot watch libusb fd %d: out of memory", fd);
        return;
    }
    event_add(hf.ev, NULL);
    g_array_append_val(h->fds, hf);
}

static void host_fd_remove(int fd, void *arg)
{
    struct ferry_usb_host *h = arg;

    for (guint i = 0; i < h->fds->len; i++) {
        struct host_fd *o = &g_array_index(h->fds, struct host_fd, i);
        if (o->fd == fd) {
            event_free(o->ev);
            g_array_remove_index(h->fds, i);
            return;
        }
    }
}

/* ---- device info ----------------------------------------------------------- */

static void sysfs_read(const char *port, const char *attr, char *buf, size_t len)
{
    char path[256];
    gchar *txt = NULL;

    buf[0] = 0;
    if (!port[0])
        return;
    snprintf(path, sizeof(path), "/sys/bus/usb/devices/%s/%s", port, attr);
    if (g_file_get_contents(path, &txt, NULL, NULL)) {
        g_strchomp(txt);
        g_strlcpy(buf, txt, len);
        g_free(txt);
    }
}

static void sysfs_driver(const char *port, uint8_t cfg, unsigned n, char *buf, size_t len)
{
    char path[256], link[256];
    ssize_t r;

    buf[0] = 0;
    if (!port[0])
        return;
    for (unsigned i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "/sys/bus/usb/devices/%s:%u.%u/driver", port, cfg, i);
        r = readlink(path, link, sizeof(link) - 1);
        if (r > 0) {
            link[r] = 0;
            g_strlcpy(buf, strrchr(link, '/') ? strrchr(link, '/') + 1 : link, len);
            return;
        }
    }
}

static int speed_mbps(int speed)
{
    switch (speed) {
    case LIBUSB_SPEED_LOW: return 1;
    case LIBUSB_SPEED_FULL: return 12;
    case LIBUSB_SPEED_HIGH: return 480;
    case LIBUSB_SPEED_SUPER: return 5000;
    case LIBUSB_SPEED_SUPER_PLUS: return 10000;
    default: return 0;
    }
}

static void fill_ifaces(struct ferry_usb_devinfo *d, const struct libusb_config_descriptor *cfg)
{
    d->n_ifaces = 0;
    for (uint8_t i = 0; i < cfg->bNumInterfaces && d->n_ifaces < FERRY_USB_IFACE_MAX; i++) {
        const struct libusb_interface *itf = &cfg->interface[i];
        if (itf->num_altsetting < 1)
            continue;
        d->ifaces[d->n_ifaces].cls = itf->altsetting[0].bInterfaceClass;
        d->ifaces[d->n_ifaces].subcls = itf->altsetting[0].bInterfaceSubClass;
        d->ifaces[d->n_ifaces].proto = itf->altsetting[0].bInterfaceProtocol;
        d->n_ifaces++;
    }
}

static bool iface_in(const struct ferry_usb_iface *set, unsigned n,
                     const struct libusb_interface_descriptor *a)
{
    for (unsigned i = 0; i < n; i++)
        if (set[i].cls == a->bInterfaceClass && set[i].subcls == a->bInterfaceSubClass &&
            set[i].proto == a->bInterfaceProtocol)
            return true;
    return false;
}

/* Every interface kind of every altsetting of every configuration that the
 * active configuration's first altsettings do not show already. */
static void fill_other(struct ferry_usb_devinfo *d, libusb_device *dev, uint8_t n_configs)
{
    d->n_other = 0;
    d->other_truncated = n_configs > FERRY_USB_CONFIG_MAX;
    for (uint8_t c = 0; c < n_configs && c < FERRY_USB_CONFIG_MAX; c++) {
        struct libusb_config_descriptor *cfg;

        if (libusb_get_config_descriptor(dev, c, &cfg) != 0)
            continue;
        for (uint8_t i = 0; i < cfg->bNumInterfaces; i++) {
            const struct libusb_interface *itf = &cfg->interface[i];

            for (int a = 0; a < itf->num_altsetting; a++) {
                const struct libusb_interface_descriptor *alt = &itf->altsetting[a];

                if (iface_in(d->ifaces, d->n_ifaces, alt) || iface_in(d->other, d->n_other, alt))
                    continue;
                if (d->n_other == FERRY_USB_IFACE_MAX) {
                    d->other_truncated = true;
                    break;
                }
                d->other[d->n_other].cls = alt->bInterfaceClass;
                d->other[d->n_other].subcls = alt->bInterfaceSubClass;
                d->other[d->n_other].proto = alt->bInterfaceProtocol;
                d->n_other++;
            }
        }
        libusb_free_config_descriptor(cfg);
    }
}

void usb_devinfo_from_libusb(libusb_device *dev, struct ferry_usb_devinfo *d)
{
    struct libusb_device_descriptor dd = { 0 };
    struct libusb_config_descriptor *cfg = NULL;
    uint8_t ports[8];
    int n;
    uint8_t cfgval = 1;

    memset(d, 0, sizeof(*d));
    d->bus = libusb_get_bus_number(dev);
    d->addr = libusb_get_device_address(dev);
    d->speed_mbps = speed_mbps(libusb_get_device_speed(dev));
    n = libusb_get_port_numbers(dev, ports, (int)sizeof(ports));
    if (n > 0) {
        size_t off = (size_t)snprintf(d->port, sizeof(d->port), "%u", d->bus);
        for (int i = 0; i < n && off < sizeof(d->port); i++)
            off += (size_t)snprintf(d->port + off, sizeof(d->port) - off, "%c%u",
                                    i ? '.' : '-', ports[i]);
    } else if (libusb_get_parent(dev) == NULL && d->bus) {
        snprintf(d->port, sizeof(d->port), "usb%u", d->bus);   /* a root hub */
    }
    if (libusb_get_device_descriptor(dev, &dd) == 0) {
        d->vid = dd.idVendor;
        d->pid = dd.idProduct;
        d->bcd_device = dd.bcdDevice;
        d->cls = dd.bDeviceClass;
        d->subcls = dd.bDeviceSubClass;
        d->proto = dd.bDeviceProtocol;
    }
    if (libusb_get_active_config_descriptor(dev, &cfg) != 0)
        libusb_get_config_descriptor(dev, 0, &cfg);
    if (cfg) {
        fill_ifaces(d, cfg);
        cfgval = cfg->bConfigurationValue;
        libusb_free_config_descriptor(cfg);
    }
    fill_other(d, dev, dd.bNumConfigurations);
    sysfs_read(d->port, "manufacturer", d->manufacturer, sizeof(d->manufacturer));
    sysfs_read(d->port, "product", d->product, sizeof(d->product));
    sysfs_read(d->port, "serial", d->serial, sizeof(d->serial));
    sysfs_driver(d->port, cfgval, d->n_ifaces, d->driver, sizeof(d->driver));
}

void usb_identity(const struct ferry_usb_devinfo *d, char *buf, size_t len)
{
    if (d->serial[0])
        snprintf(buf, len, "%04x:%04x:%s", d->vid, d->pid, d->serial);
    else if (d->port[0])
        snprintf(buf, len, "%s", d->port);
    else
        snprintf(buf, len, "%04x:%04x", d->vid, d->pid);
}

/* ---- specs ------------------------------------------------------------------- */

static bool parse_hex16(const char *s, size_t n, uint16_t *out)
{
    unsigned v = 0;

    if (n == 0 || n > 4)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isxdigit(s[i]))
            return false;
        v = v * 16 + (unsigned)g_ascii_xdigit_value(s[i]);
    }
    *out = (uint16_t)v;
    return true;
}

int usb_spec_parse(const char *s, struct ferry_usb_spec *out)
{
    const char *c1, *c2;
    size_t len;

    memset(out, 0, sizeof(*out));
    if (!s || !*s)
        return -EINVAL;
    len = strlen(s);
    c1 = strchr(s, ':');
    if (c1) {
        c2 = strchr(c1 + 1, ':');
        if (!parse_hex16(s, (size_t)(c1 - s), &out->vid))
            return -EINVAL;
        if (!parse_hex16(c1 + 1, c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1), &out->pid))
            return -EINVAL;
        if (!c2) {
            out->kind = FERRY_USB_SPEC_VIDPID;
            return 0;
        }
        if (!c2[1] || strlen(c2 + 1) >= sizeof(out->serial))
            return -EINVAL;
        g_strlcpy(out->serial, c2 + 1, sizeof(out->serial));
        out->kind = FERRY_USB_SPEC_VIDPID_SERIAL;
        return 0;
    }
    if (strchr(s, '-')) {
        /* port path: BUS-P[.P]* */
        if (len >= sizeof(out->port))
            return -EINVAL;
        for (size_t i = 0; i < len; i++)
            if (!g_ascii_isdigit(s[i]) && s[i] != '-' && s[i] != '.')
                return -EINVAL;
        if (!g_ascii_isdigit(s[0]) || !g_ascii_isdigit(s[len - 1]) ||
            strchr(strchr(s, '-') + 1, '-'))
            return -EINVAL;
        g_strlcpy(out->port, s, sizeof(out->port));
        out->kind = FERRY_USB_SPEC_PORT;
        return 0;
    }
    {
        unsigned bus, addr;
        char tail;
        if (sscanf(s, "%u.%u%c", &bus, &addr, &tail) == 2 && bus <= 255 && addr <= 255 &&
            addr > 0) {
            out->bus = (uint8_t)bus;
            out->addr = (uint8_t)addr;
            out->kind = FERRY_USB_SPEC_BUSADDR;
            return 0;
        }
    }
    return -EINVAL;
}

bool usb_spec_match(const struct ferry_usb_spec *spec, const struct ferry_usb_devinfo *d)
{
    switch (spec->kind) {
    case FERRY_USB_SPEC_VIDPID:
        return d->vid == spec->vid && d->pid == spec->pid;
    case FERRY_USB_SPEC_VIDPID_SERIAL:
        return d->vid == spec->vid && d->pid == spec->pid && !strcmp(d->serial, spec->serial);
    case FERRY_USB_SPEC_PORT:
        return !strcmp(d->port, spec->port);
    case FERRY_USB_SPEC_BUSADDR:
        return d->bus == spec->bus && d->addr == spec->addr;
    }
    return false;
}

void usb_spec_format(const struct ferry_usb_spec *spec, char *buf, size_t len)
{
    switch (spec->kind) {
    case FERRY_USB_SPEC_VIDPID:
        snprintf(buf, len, "%04x:%04x", spec->vid, spec->pid);
        break;
    case FERRY_USB_SPEC_VIDPID_SERIAL:
        snprintf(buf, len, "%04x:%04x:%s", spec->vid, spec->pid, spec->serial);
        break;
    case FERRY_USB_SPEC_PORT:
        snprintf(buf, len, "%s", spec->port);
        break;
    case FERRY_USB_SPEC_BUSADDR:
        snprintf(buf, len, "%u.%u", spec->bus, spec->addr);
        break;
    }
}

/* ---- the device list ------------------------------------------------------- */

static int host_index(struct ferry_usb_host *h, libusb_device *dev)
{
    for (guint i = 0; i < h->libdevs->len; i++)
        if (g_ptr_array_index(h->libdevs, i) == dev)
            return (int)i;
    return -1;
}

static void host_add_dev(struct ferry_usb_host *h, libusb_device *dev, bool notify)
{
    struct ferry_usb_devinfo d;

    if (host_index(h, dev) >= 0)
        return;
    usb_devinfo_from_libusb(dev, &d);
    g_array_append_val(h->devs, d);
    g_ptr_array_add(h->libdevs, libusb_ref_device(dev));
    LOG(h, FERRY_LOG_DEBUG, "device arrived bus=%u addr=%u port=%s id=%04x:%04x",
        d.bus, d.addr, d.port, d.vid, d.pid);
    if (notify && h->ops.arrived)
        h->ops.arrived(h->opaque, &d);
}

static void host_remove_dev(struct ferry_usb_host *h, libusb_device *dev)
{
    int i = host_index(h, dev);
    struct ferry_usb_devinfo d;

    if (i < 0)
        return;
    d = g_array_index(h->devs, struct ferry_usb_devinfo, i);
    g_array_remove_index(h->devs, (guint)i);
    libusb_unref_device(g_ptr_array_index(h->libdevs, i));
    g_ptr_array_remove_index(h->libdevs, (guint)i);
    LOG(h, FERRY_LOG_DEBUG, "device left bus=%u addr=%u port=%s", d.bus, d.addr, d.port);
    if (h->ops.left)
        h->ops.left(h->opaque, &d);
}

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_usb_host *h = arg;
    struct host_change *c;

    while ((c = g_queue_pop_head(&h->changes))) {
        if (c->arrived)
            host_add_dev(h, c->dev, true);
        else
            host_remove_dev(h, c->dev);
        libusb_unref_device(c->dev);
        g_free(c);
    }
}

/* Called inside libusb_handle_events (or registration): queue only. */
static int LIBUSB_CALL on_hotplug(libusb_context *ctx, libusb_device *dev,
                                  libusb_hotplug_event event, void *arg)
{
    struct ferry_usb_host *h = arg;
    struct host_change *c = g_new0(struct host_change, 1);

    c->arrived = event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED;
    c->dev = libusb_ref_device(dev);
    g_queue_push_tail(&h->changes, c);
    event_active(h->deferred, EV_TIMEOUT, 0);
    return 0;
}

int usb_host_rescan(struct ferry_usb_host *h)
{
    libusb_device **list;
    ssize_t n;

    if (!h->discover)
        return 0;
    n = libusb_get_device_list(h->ctx, &list);
    if (n < 0) {
        LOG(h, FERRY_LOG_ERROR, "cannot list devices: %s", libusb_strerror((int)n));
        return -EIO;
    }
    /* drop the ones that are gone, add the new ones */
    for (guint i = h->libdevs->len; i-- > 0;) {
        libusb_device *dev = g_ptr_array_index(h->libdevs, i);
        bool found = false;
        for (ssize_t k = 0; k < n; k++)
            found |= list[k] == dev;
        if (!found)
            host_remove_dev(h, dev);
    }
    for (ssize_t k = 0; k < n; k++)
        host_add_dev(h, list[k], true);
    libusb_free_device_list(list, 1);
    return 0;
}

const struct ferry_usb_devinfo *usb_host_devices(struct ferry_usb_host *h, size_t *n)
{
    *n = h->devs->len;
    return (const struct ferry_usb_devinfo *)h->devs->data;
}

int usb_host_find(struct ferry_usb_host *h, const struct ferry_usb_spec *spec,
                        struct ferry_usb_devinfo *out, char *err, size_t errlen)
{
    unsigned hits = 0;
    GString *cand = g_string_new(NULL);
    char want[160];

    usb_spec_format(spec, want, sizeof(want));
    for (guint i = 0; i < h->devs->len; i++) {
        const struct ferry_usb_devinfo *d = &g_array_index(h->devs, struct ferry_usb_devinfo, i);
        if (!usb_spec_match(spec, d))
            continue;
        if (!hits++)
            *out = *d;
        g_string_append_printf(cand, "%s%s (bus %u addr %u%s%s)", cand->len ? ", " : "",
                               d->port, d->bus, d->addr, d->serial[0] ? " serial " : "",
                               d->serial);
    }
    if (hits == 0)
        snprintf(err, errlen, "usb device %s: not found", want);
    else if (hits > 1)
        snprintf(err, errlen, "usb device %s: ambiguous, %u candidates: %s", want, hits, cand->str);
    g_string_free(cand, TRUE);
    return hits == 1 ? 0 : hits ? -EEXIST : -ENOENT;
}

int usb_host_open(struct ferry_usb_host *h, const struct ferry_usb_devinfo *d,
                        libusb_device_handle **out, char *err, size_t errlen)
{
    for (guint i = 0; i < h->devs->len; i++) {
        const struct ferry_usb_devinfo *o = &g_array_index(h->devs, struct ferry_usb_devinfo, i);
        int r;
        if (o->bus != d->bus || o->addr != d->addr)
            continue;
        r = libusb_open(g_ptr_array_index(h->libdevs, i), out);
        if (r == LIBUSB_ERROR_ACCESS) {
            snprintf(err, errlen, "usb %s: cannot open: %s: attach it with root's `ferry usb "
                     "attach` (it passes the fd), list it in [usb] devices= (opened as root at "
                     "start), or run as root", d->port, libusb_strerror(r));
            return -EACCES;
        }
        if (r < 0) {
            snprintf(err, errlen, "usb %s: cannot open: %s", d->port, libusb_strerror(r));
            return r == LIBUSB_ERROR_ACCESS ? -EACCES : r == LIBUSB_ERROR_NO_DEVICE ? -ENODEV : -EIO;
        }
        return 0;
    }
    snprintf(err, errlen, "usb %s: cannot open: device is gone", d->port);
    return -ENODEV;
}

int usb_host_wrap_fd(struct ferry_usb_host *h, int fd, libusb_device_handle **out,
                           struct ferry_usb_devinfo *info, char *err, size_t errlen)
{
    int r = libusb_wrap_sys_device(h->ctx, (intptr_t)fd, out);

    if (r < 0) {
        snprintf(err, errlen, "usb fd %d: cannot wrap: %s (the fd passed must be the device's "
                 "usbfs node, /dev/bus/usb/BBB/DDD, opened read-write)", fd, libusb_strerror(r));
        return -EIO;
    }
    if (info) {
        struct libusb_device_descriptor dd;
        usb_devinfo_from_libusb(libusb_get_device(*out), info);
        /* no sysfs behind a passed fd: ask the device for its strings */
        if (libusb_get_device_descriptor(libusb_get_device(*out), &dd) == 0) {
            const struct { uint8_t idx; char *buf; } str[] = {
                { dd.iManufacturer, info->manufacturer }, { dd.iProduct, info->product },
                { dd.iSerialNumber, info->serial },
            };
            for (size_t i = 0; i < 3; i++)
                if (str[i].idx && !str[i].buf[0] &&
                    libusb_get_string_descriptor_ascii(*out, str[i].idx, (unsigned char *)str[i].buf,
                                                       FERRY_USB_STR_MAX) < 0)
                    str[i].buf[0] = 0;
        }
    }
    return 0;
}

struct event_base *usb_host_base(struct ferry_usb_host *h)
{
    return h->base;
}

struct libusb_context *usb_host_context(struct ferry_usb_host *h)
{
    return h->ctx;
}

/* ---- setup ------------------------------------------------------------------- */

int usb_host_new(struct event_base *base, bool discover,
                       const struct ferry_usb_host_ops *ops, void *opaque,
                       struct ferry_usb_host **out)
{
    struct ferry_usb_host *h = g_new0(struct ferry_usb_host, 1);
    const struct libusb_pollfd **pfds;
    int r;

    h->base = base;
    h->ops = *ops;
    h->opaque = opaque;
    h->discover = discover;
    h->fds = g_array_new(FALSE, TRUE, sizeof(struct host_fd));
    h->devs = g_array_new(FALSE, TRUE, sizeof(struct ferry_usb_devinfo));
    h->libdevs = g_ptr_array_new();
    g_queue_init(&h->changes);
    if (!discover)
        libusb_set_option(NULL, LIBUSB_OPTION_NO_DEVICE_DISCOVERY);
    r = libusb_init(&h->ctx);
    if (r < 0) {
        LOG(h, FERRY_LOG_ERROR, "cannot initialise libusb: %s", libusb_strerror(r));
        h->ctx = NULL;
        usb_host_free(h);
        return -EIO;
    }
    h->timer = evtimer_new(base, on_libusb_timer, h);
    h->deferred = event_new(base, -1, 0, on_deferred, h);
    libusb_set_pollfd_notifiers(h->ctx, host_fd_add, host_fd_remove, h);
    pfds = libusb_get_pollfds(h->ctx);
    for (int i = 0; pfds && pfds[i]; i++)
        host_fd_add(pfds[i]->fd, pfds[i]->events, h);
    libusb_free_pollfds(pfds);
    if (discover) {
        if (libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
            r = libusb_hotplug_register_callback(h->ctx,
                    LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
                    LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY,
                    LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
                    on_hotplug, h, &h->hp);
            if (r == 0)
                h->hp_registered = true;
            else
                LOG(h, FERRY_LOG_WARNING, "no hotplug: %s", libusb_strerror(r));
        }
        /* take the initial list now, so that callers see it at once */
        on_deferred(-1, 0, h);
        if (!h->hp_registered && usb_host_rescan(h) < 0) {
            usb_host_free(h);
            return -EIO;
        }
    }
    host_arm_timer(h);
    *out = h;
    return 0;
}

void usb_host_free(struct ferry_usb_host *h)
{
    struct host_change *c;

    if (!h)
        return;
    if (h->ctx) {
        if (h->hp_registered)
            libusb_hotplug_deregister_callback(h->ctx, h->hp);
        libusb_set_pollfd_notifiers(h->ctx, NULL, NULL, NULL);
    }
    while ((c = g_queue_pop_head(&h->changes))) {
        libusb_unref_device(c->dev);
        g_free(c);
    }
    for (guint i = 0; i < h->libdevs->len; i++)
        libusb_unref_device(g_ptr_array_index(h->libdevs, i));
    for (guint i = 0; i < h->fds->len; i++)
        event_free(g_array_index(h->fds, struct host_fd, i).ev);
    if (h->timer)
        event_free(h->timer);
    if (h->deferred)
        event_free(h->deferred);
    if (h->ctx)
        libusb_exit(h->ctx);
    g_array_free(h->fds, TRUE);
    g_array_free(h->devs, TRUE);
    g_ptr_array_free(h->libdevs, TRUE);
    g_free(h);
}

/* ---- SCM_RIGHTS ----------------------------------------------------------- */

int usb_fd_send(int sock, int fd, const void *msg, size_t len)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct cmsghdr *cm;

    if (len == 0)
        return -EINVAL;
    if (fd >= 0) {
        memset(cbuf, 0, sizeof(cbuf));
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof(cbuf);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)len)
        return -errno ? -errno : -EIO;
    return 0;
}

int usb_fd_recv(int sock, int *fd, void *msg, size_t len)
{
    char cbuf[CMSG_SPACE(sizeof(int) * 4)];
    struct iovec iov = { .iov_base = msg, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    ssize_t n;

    *fd = -1;
    n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return -errno;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int f;
            memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (*fd < 0)
                *fd = f;
            else
                close(f);    /* only one fd is expected: drop extras */
        }
    }
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return -EMSGSIZE;
    }
    return (int)n;
}
