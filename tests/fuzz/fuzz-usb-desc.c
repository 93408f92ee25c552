// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: what a hostile USB device declares, through
 * libferry-usb's reading of it (usb/host.c: device descriptor, port path,
 * the active configuration's interfaces, every altsetting of every
 * configuration, its strings when it came as a broker's fd) into the policy
 * (usb/policy.c: built-in refusals, usbredir filter rules and the rule that
 * decides), the identity used after a replug and device specs.
 *
 * usb/host.c is compiled in with libusb's descriptor getters replaced by
 * ones that answer from the input: whatever libusb's parser can hand over
 * (up to 32 interfaces of up to 128 altsettings per configuration, up to
 * 255 configurations, any class codes, strings of any bytes) arrives here.
 * libusb's own parsing of the raw bytes is libusb's (and needs a usbfs
 * node: tests/usb's umockdev simulator has fixed devices).
 *
 * Input: device descriptor (18 bytes), speed u8, number of ports u8 and
 * the ports, active configuration u8 (0xff: none), then per configuration
 * (bNumConfigurations of them while input lasts): bNumInterfaces u8, per
 * interface num_altsetting u8, per altsetting class, subclass, protocol;
 * then strings: three NUL-terminated (manufacturer, product, serial), then
 * the policy rules (up to NUL), then a device spec (the rest).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libusb.h>

/* libusb's getters, as usb/host.c calls them, answered from the input */
#define libusb_get_bus_number fuzz_get_bus_number
#define libusb_get_device_address fuzz_get_device_address
#define libusb_get_device_speed fuzz_get_device_speed
#define libusb_get_port_numbers fuzz_get_port_numbers
#define libusb_get_parent fuzz_get_parent
#define libusb_get_device_descriptor fuzz_get_device_descriptor
#define libusb_get_active_config_descriptor fuzz_get_active_config_descriptor
#define libusb_get_config_descriptor fuzz_get_config_descriptor
#define libusb_free_config_descriptor fuzz_free_config_descriptor
#define libusb_wrap_sys_device fuzz_wrap_sys_device
#define libusb_get_device fuzz_get_device
#define libusb_get_string_descriptor_ascii fuzz_get_string_descriptor_ascii

uint8_t fuzz_get_bus_number(libusb_device *dev);
uint8_t fuzz_get_device_address(libusb_device *dev);
int fuzz_get_device_speed(libusb_device *dev);
int fuzz_get_port_numbers(libusb_device *dev, uint8_t *ports, int len);
libusb_device *fuzz_get_parent(libusb_device *dev);
int fuzz_get_device_descriptor(libusb_device *dev, struct libusb_device_descriptor *d);
int fuzz_get_active_config_descriptor(libusb_device *dev, struct libusb_config_descriptor **c);
int fuzz_get_config_descriptor(libusb_device *dev, uint8_t i, struct libusb_config_descriptor **c);
void fuzz_free_config_descriptor(struct libusb_config_descriptor *c);
int fuzz_wrap_sys_device(libusb_context *ctx, intptr_t fd, libusb_device_handle **h);
libusb_device *fuzz_get_device(libusb_device_handle *h);
int fuzz_get_string_descriptor_ascii(libusb_device_handle *h, uint8_t idx, unsigned char *buf,
                                     int len);

#include "usb/host.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define FUZZ_CONFIGS 8      /* parsed from the input; more are "unreadable" */

/* The hostile device, decoded from the input. */
static struct {
    struct libusb_device_descriptor dd;
    uint8_t speed, nports, ports[16], active;
    unsigned nconf;
    struct libusb_config_descriptor conf[FUZZ_CONFIGS];
    const char *str[3];
} dev;

static libusb_device *const fake_dev = (libusb_device *)&dev;

uint8_t fuzz_get_bus_number(libusb_device *d) { return 1; }
uint8_t fuzz_get_device_address(libusb_device *d) { return 2; }
int fuzz_get_device_speed(libusb_device *d) { return dev.speed % 7; }
libusb_device *fuzz_get_parent(libusb_device *d) { return NULL; }
libusb_device *fuzz_get_device(libusb_device_handle *h) { return fake_dev; }

int fuzz_get_port_numbers(libusb_device *d, uint8_t *ports, int len)
{
    if (dev.nports > len)
        return LIBUSB_ERROR_OVERFLOW;
    memcpy(ports, dev.ports, dev.nports);
    return dev.nports;
}

int fuzz_get_device_descriptor(libusb_device *d, struct libusb_device_descriptor *out)
{
    *out = dev.dd;
    return 0;
}

int fuzz_get_config_descriptor(libusb_device *d, uint8_t i, struct libusb_config_descriptor **c)
{
    if (i >= dev.nconf || i >= dev.dd.bNumConfigurations)
        return LIBUSB_ERROR_NOT_FOUND;
    *c = &dev.conf[i];
    return 0;
}

int fuzz_get_active_config_descriptor(libusb_device *d, struct libusb_config_descriptor **c)
{
    return dev.active == 0xff ? LIBUSB_ERROR_NOT_FOUND
                              : fuzz_get_config_descriptor(d, dev.active, c);
}

void fuzz_free_config_descriptor(struct libusb_config_descriptor *c)
{
    FUZZ_CHECK(!c || (c >= dev.conf && c < dev.conf + FUZZ_CONFIGS));
}

int fuzz_wrap_sys_device(libusb_context *ctx, intptr_t fd, libusb_device_handle **h)
{
    *h = (libusb_device_handle *)&dev;
    return 0;
}

/* As libusb: at most len - 1 characters and a NUL. */
int fuzz_get_string_descriptor_ascii(libusb_device_handle *h, uint8_t idx, unsigned char *buf,
                                     int len)
{
    const char *s = dev.str[idx % 3];
    size_t n = strlen(s);

    if (len < 1)
        return LIBUSB_ERROR_INVALID_PARAM;
    if (n > (size_t)len - 1)
        n = (size_t)len - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return (int)n;
}

/* ---- decoding ------------------------------------------------------------ */

struct in {
    const uint8_t *p;
    size_t n, pos;
};

static uint8_t u8(struct in *in)
{
    return in->pos < in->n ? in->p[in->pos++] : 0;
}

static const char *str(struct in *in)
{
    const char *s = (const char *)in->p + in->pos;
    const uint8_t *nul = memchr(in->p + in->pos, 0, in->n - in->pos);

    if (!nul)
        return NULL;
    in->pos = (size_t)(nul - in->p) + 1;
    return s;
}

/* Interfaces and altsettings of all configurations, freed after each run. */
static struct libusb_interface itfs[FUZZ_CONFIGS][32];
static struct libusb_interface_descriptor *alts[FUZZ_CONFIGS][32];

static void decode(struct in *in)
{
    uint8_t raw[18];

    memset(&dev, 0, sizeof(dev));
    for (int i = 0; i < 18; i++)
        raw[i] = u8(in);
    dev.dd.bLength = raw[0];
    dev.dd.bDescriptorType = raw[1];
    dev.dd.bcdUSB = (uint16_t)(raw[2] | raw[3] << 8);
    dev.dd.bDeviceClass = raw[4];
    dev.dd.bDeviceSubClass = raw[5];
    dev.dd.bDeviceProtocol = raw[6];
    dev.dd.bMaxPacketSize0 = raw[7];
    dev.dd.idVendor = (uint16_t)(raw[8] | raw[9] << 8);
    dev.dd.idProduct = (uint16_t)(raw[10] | raw[11] << 8);
    dev.dd.bcdDevice = (uint16_t)(raw[12] | raw[13] << 8);
    dev.dd.iManufacturer = raw[14];
    dev.dd.iProduct = raw[15];
    dev.dd.iSerialNumber = raw[16];
    dev.dd.bNumConfigurations = raw[17];
    dev.speed = u8(in);
    dev.nports = u8(in) % 17;
    for (unsigned i = 0; i < dev.nports; i++)
        dev.ports[i] = u8(in);
    dev.active = u8(in);
    for (dev.nconf = 0; dev.nconf < FUZZ_CONFIGS && dev.nconf < dev.dd.bNumConfigurations &&
                        in->pos < in->n; dev.nconf++) {
        struct libusb_config_descriptor *c = &dev.conf[dev.nconf];

        c->bLength = 9;
        c->bDescriptorType = LIBUSB_DT_CONFIG;
        c->bConfigurationValue = (uint8_t)(dev.nconf + 1);
        c->bNumInterfaces = u8(in) % 33;            /* libusb refuses more than 32 */
        c->interface = itfs[dev.nconf];
        for (unsigned i = 0; i < c->bNumInterfaces; i++) {
            struct libusb_interface *itf = &itfs[dev.nconf][i];

            itf->num_altsetting = u8(in) % 129;     /* and more than 128 altsettings */
            alts[dev.nconf][i] = calloc(itf->num_altsetting ? itf->num_altsetting : 1,
                                        sizeof(**alts[dev.nconf]));
            FUZZ_CHECK(alts[dev.nconf][i]);
            for (int a = 0; a < itf->num_altsetting; a++) {
                struct libusb_interface_descriptor *d = &alts[dev.nconf][i][a];

                d->bLength = 9;
                d->bDescriptorType = LIBUSB_DT_INTERFACE;
                d->bInterfaceNumber = (uint8_t)i;
                d->bAlternateSetting = (uint8_t)a;
                d->bInterfaceClass = u8(in);
                d->bInterfaceSubClass = u8(in);
                d->bInterfaceProtocol = u8(in);
            }
            itf->altsetting = alts[dev.nconf][i];
        }
    }
}

static void release(void)
{
    for (unsigned c = 0; c < FUZZ_CONFIGS; c++)
        for (unsigned i = 0; i < 32; i++) {
            free(alts[c][i]);
            alts[c][i] = NULL;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ferry_usb_host *host;
    struct in in = { data, size, 0 };
    struct ferry_usb_devinfo d, w;
    struct ferry_usb_policy *p = NULL;
    struct ferry_usb_spec spec;
    libusb_device_handle *h = NULL;
    char why[256], err[FERRY_USB_ERR_MAX], ident[512], back[512];
    const char *rules, *spec_text;
    char *spec_copy;

    if (!host) {
        struct ferry_usb_host_ops ops = { 0 };

        /* libusb without enumeration (only "fds" come in): no host devices */
        FUZZ_CHECK(usb_host_new(NULL, false, &ops, NULL, &host) == 0);
    }
    decode(&in);
    for (int i = 0; i < 3; i++) {
        const char *s = str(&in);

        dev.str[i] = s ? s : "";
    }
    rules = str(&in);
    spec_copy = strndup((const char *)data + in.pos, size - in.pos);
    FUZZ_CHECK(spec_copy);
    spec_text = spec_copy;

    usb_devinfo_from_libusb(fake_dev, &d);
    FUZZ_CHECK(d.n_ifaces <= FERRY_USB_IFACE_MAX && d.n_other <= FERRY_USB_IFACE_MAX);
    FUZZ_CHECK(memchr(d.port, 0, sizeof(d.port)));
    FUZZ_CHECK(usb_host_wrap_fd(host, 99, &h, &w, err, sizeof(err)) == 0);
    FUZZ_CHECK(memchr(w.manufacturer, 0, sizeof(w.manufacturer)) &&
               memchr(w.product, 0, sizeof(w.product)) && memchr(w.serial, 0, sizeof(w.serial)));

    err[0] = 0;
    if (usb_policy_new(rules, &p, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0]);     /* a refusal says why */
        p = NULL;
    }
    for (int k = 0; k < 2; k++) {
        const struct ferry_usb_devinfo *x = k ? &w : &d;
        int rc;

        why[0] = 0;
        rc = usb_policy_check(p, x, why, sizeof(why));
        FUZZ_CHECK((rc == 0 || rc == -EPERM) && why[0]);
        /* the built-in refusals cannot be overridden by "allow everything" */
        if (x->other_truncated)
            FUZZ_CHECK(rc == -EPERM);
        usb_identity(x, ident, sizeof(ident));
        if (usb_spec_parse(spec_text, &spec) == 0) {
            (void)usb_spec_match(&spec, x);
            usb_spec_format(&spec, back, sizeof(back));
        }
    }
    usb_policy_free(p);
    free(spec_copy);
    release();
    return 0;
}
