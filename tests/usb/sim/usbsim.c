// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * USB device simulator on umockdev (see usbsim.h).
 *
 * Each simulated device is a sysfs entry in the testbed (device and
 * interface directories with the attributes libusb reads: descriptors,
 * busnum, devnum, speed, bConfigurationValue) plus a usbfs node whose ioctls
 * are answered here.  URBs are queued per endpoint and completed when the
 * device has data (interrupt/bulk IN) or at once (control, OUT, iso); reaped
 * URBs are written back into the client's memory by umockdev.
 */
#include <errno.h>
#include <linux/usbdevice_fs.h>
#include <linux/usb/ch9.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <umockdev.h>
#include <unistd.h>

#include "usbsim.h"

#define SIM_DISK_BYTES ((uint64_t)USBSIM_DISK_SECTORS * 512u)
#define SIM_LOOP_MAX   (256u * 1024u)

struct sim_urb {
    UMockdevIoctlData *data;     /* the struct usbdevfs_urb, referenced */
    UMockdevIoctlData *buf;      /* its buffer (owned by data), may be NULL */
    UMockdevIoctlData *iso;      /* its iso frame descriptors, may be NULL */
    uint8_t ep;
    uint8_t type;
    int iso_filled;              /* manual iso clock: packets filled so far */
    int iso_bytes;
};

struct usbsim_dev {
    struct usbsim *sim;
    enum usbsim_kind kind;
    char port[32];
    char serial[64];
    bool has_serial;
    int busnum, devnum;
    char devnode[64];
    char *syspath;
    UMockdevIoctlBase *handler;
    GMutex lock;
    bool present;
    bool bound[2];            /* a host kernel driver holds interface i */
    GQueue pending;           /* struct sim_urb * waiting for data */
    GQueue done;              /* struct sim_urb * ready to reap */
    uint64_t urbs_done;
    /* keyboard */
    uint8_t reports[64][8];
    unsigned nreports;
    /* storage: bulk-only transport */
    uint8_t *disk;
    int bot_state;            /* 0 expect CBW, 1 data in, 2 data out, 3 status */
    uint8_t cbw_tag[4];
    uint32_t residue;
    uint8_t csw_status;
    uint8_t *xfer;            /* data-in bytes */
    uint32_t xfer_len, xfer_pos;
    uint64_t out_off;         /* data-out: disk offset and remaining bytes */
    uint32_t out_left;
    uint8_t sense_key, asc;
    /* vendor */
    GByteArray *loop;
    uint32_t iso_seq;
    bool iso_manual;          /* usbsim_iso_manual: frames pass by usbsim_iso_tick */
    unsigned stream_allocs, stream_frees, streams;
    struct usbsim_iso_stats iso;
    GPtrArray *old_handlers;
};

struct usbsim {
    UMockdevTestbed *tb;
    char *root;
    int next_devnum[8];
    GPtrArray *devs;
    GPtrArray *handlers;
};

/* ---- descriptors -------------------------------------------------------- */

static const uint8_t kbd_report_desc[] = {
    0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7,
    0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0x95, 0x01,
    0x75, 0x08, 0x81, 0x01, 0x95, 0x05, 0x75, 0x01, 0x05, 0x08, 0x19, 0x01,
    0x29, 0x05, 0x91, 0x02, 0x95, 0x01, 0x75, 0x03, 0x91, 0x01, 0x95, 0x06,
    0x75, 0x08, 0x15, 0x00, 0x25, 0x65, 0x05, 0x07, 0x19, 0x00, 0x29, 0x65,
    0x81, 0x00, 0xc0,
};

static const uint8_t kbd_config[] = {
    0x09, 0x02, 34, 0, 0x01, 0x01, 0x00, 0xa0, 0x32,
    0x09, 0x04, 0x00, 0x00, 0x01, 0x03, 0x01, 0x01, 0x00,
    0x09, 0x21, 0x11, 0x01, 0x00, 0x01, 0x22, sizeof(kbd_report_desc), 0x00,
    0x07, 0x05, 0x81, 0x03, 0x08, 0x00, 0x0a,
};

static const uint8_t msc_config[] = {
    0x09, 0x02, 32, 0, 0x01, 0x01, 0x00, 0x80, 0x32,
    0x09, 0x04, 0x00, 0x00, 0x02, 0x08, 0x06, 0x50, 0x00,
    0x07, 0x05, 0x81, 0x02, 0x00, 0x02, 0x00,
    0x07, 0x05, 0x02, 0x02, 0x00, 0x02, 0x00,
};

static const uint8_t vnd_config[] = {
    0x09, 0x02, 57, 0, 0x02, 0x01, 0x00, 0x80, 0x32,
    0x09, 0x04, 0x00, 0x00, 0x02, 0xff, 0x00, 0x00, 0x00,
    0x07, 0x05, 0x01, 0x02, 0x00, 0x02, 0x00,
    0x07, 0x05, 0x82, 0x02, 0x00, 0x02, 0x00,
    0x09, 0x04, 0x01, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00,
    0x09, 0x04, 0x01, 0x01, 0x01, 0xff, 0x00, 0x00, 0x00,
    0x07, 0x05, 0x83, 0x05, 0xc0, 0x00, 0x01,
};

static const uint8_t disguised_config[] = {
    0x09, 0x02, 57, 0, 0x01, 0x01, 0x00, 0x80, 0x32,
    0x09, 0x04, 0x00, 0x00, 0x02, 0xff, 0x00, 0x00, 0x00,
    0x07, 0x05, 0x01, 0x02, 0x00, 0x02, 0x00,
    0x07, 0x05, 0x82, 0x02, 0x00, 0x02, 0x00,
    0x09, 0x04, 0x00, 0x01, 0x01, 0x03, 0x01, 0x01, 0x00,
    0x09, 0x21, 0x11, 0x01, 0x00, 0x01, 0x22, sizeof(kbd_report_desc), 0x00,
    0x07, 0x05, 0x83, 0x03, 0x08, 0x00, 0x0a,
};

static uint16_t dev_pid(const struct usbsim_dev *d)
{
    return d->kind == USBSIM_KEYBOARD ? USBSIM_PID_KEYBOARD :
           d->kind == USBSIM_STORAGE ? USBSIM_PID_STORAGE :
           d->kind == USBSIM_DISGUISED ? USBSIM_PID_DISGUISED : USBSIM_PID_VENDOR;
}

static const char *dev_product(const struct usbsim_dev *d)
{
    return d->kind == USBSIM_KEYBOARD ? "Ferry Sim Keyboard" :
           d->kind == USBSIM_STORAGE ? "Ferry Sim Disk" :
           d->kind == USBSIM_DISGUISED ? "Ferry Sim Disguised" : "Ferry Sim Loopback";
}

static void dev_descriptor(const struct usbsim_dev *d, uint8_t out[18])
{
    uint16_t pid = dev_pid(d);
    const uint8_t desc[18] = {
        18, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 64,
        USBSIM_VID & 0xff, USBSIM_VID >> 8, pid & 0xff, pid >> 8,
        0x00, 0x01, 1, 2, d->has_serial ? 3 : 0, 1,
    };
    memcpy(out, desc, sizeof(desc));
}

static const uint8_t *dev_config(const struct usbsim_dev *d, size_t *len)
{
    switch (d->kind) {
    case USBSIM_KEYBOARD: *len = sizeof(kbd_config); return kbd_config;
    case USBSIM_STORAGE: *len = sizeof(msc_config); return msc_config;
    case USBSIM_DISGUISED: *len = sizeof(disguised_config); return disguised_config;
    default: *len = sizeof(vnd_config); return vnd_config;
    }
}

/* String descriptor `idx` into out; returns its length or 0. */
static size_t dev_string(const struct usbsim_dev *d, unsigned idx, uint8_t *out, size_t max)
{
    const char *s;
    size_t n = 0;

    if (idx == 0) {
        const uint8_t lang[4] = { 4, 0x03, 0x09, 0x04 };
        n = max < 4 ? max : 4;
        memcpy(out, lang, n);
        return n;
    }
    s = idx == 1 ? "Ferry" : idx == 2 ? dev_product(d) :
        idx == 3 && d->has_serial ? d->serial : NULL;
    if (!s)
        return 0;
    uint8_t tmp[2 + 2 * 64];
    size_t len = strlen(s);
    if (len > 63)
        len = 63;
    tmp[0] = (uint8_t)(2 + 2 * len);
    tmp[1] = 0x03;
    for (size_t i = 0; i < len; i++) {
        tmp[2 + 2 * i] = (uint8_t)s[i];
        tmp[3 + 2 * i] = 0;
    }
    n = tmp[0] < max ? tmp[0] : max;
    memcpy(out, tmp, n);
    return n;
}

/* ---- URB bookkeeping (called with d->lock held) ------------------------ */

static void urb_free(struct sim_urb *u)
{
    g_object_unref(u->data);
    g_free(u);
}

static struct usbdevfs_urb *urb_hdr(struct sim_urb *u)
{
    return (struct usbdevfs_urb *)u->data->data;
}

static void urb_complete(struct usbsim_dev *d, struct sim_urb *u, int status, int actual)
{
    struct usbdevfs_urb *h = urb_hdr(u);

    h->status = status;
    h->actual_length = actual;
    d->urbs_done++;
    g_queue_push_tail(&d->done, u);
}

/* Copy bytes into an IN URB's buffer and complete it. */
static void urb_in(struct usbsim_dev *d, struct sim_urb *u, const void *src, size_t len)
{
    struct usbdevfs_urb *h = urb_hdr(u);
    size_t cap = u->buf ? (size_t)u->buf->data_len : 0;

    if ((size_t)h->buffer_length < cap)
        cap = (size_t)h->buffer_length;
    if (len > cap)
        len = cap;
    if (len)
        memcpy(u->buf->data, src, len);
    urb_complete(d, u, 0, (int)len);
}

static struct sim_urb *pending_take(struct usbsim_dev *d, uint8_t ep)
{
    for (GList *l = d->pending.head; l; l = l->next) {
        struct sim_urb *u = l->data;
        if (u->ep == ep) {
            g_queue_delete_link(&d->pending, l);
            return u;
        }
    }
    return NULL;
}

/* ---- keyboard ---------------------------------------------------------- */

static void kbd_pump(struct usbsim_dev *d)
{
    struct sim_urb *u;

    while (d->nreports && (u = pending_take(d, 0x81))) {
        urb_in(d, u, d->reports[0], 8);
        memmove(d->reports[0], d->reports[1], (size_t)(d->nreports - 1) * 8);
        d->nreports--;
    }
}

void usbsim_key_tap(struct usbsim_dev *d, uint8_t usage)
{
    g_mutex_lock(&d->lock);
    if (d->nreports + 2 <= G_N_ELEMENTS(d->reports)) {
        memset(d->reports[d->nreports], 0, 16);
        d->reports[d->nreports][2] = usage;
        d->nreports += 2;   /* press, then an all-zero release report */
    }
    kbd_pump(d);
    g_mutex_unlock(&d->lock);
}

/* ---- mass storage: bulk-only transport + SCSI --------------------------- */

static void msc_sense(struct usbsim_dev *d, uint8_t key, uint8_t asc)
{
    d->sense_key = key;
    d->asc = asc;
}

static void msc_data_in(struct usbsim_dev *d, const void *p, uint32_t len, uint32_t want)
{
    g_free(d->xfer);
    if (len > want)
        len = want;
    d->xfer = g_memdup2(p, len ? len : 1);
    d->xfer_len = len;
    d->xfer_pos = 0;
    d->residue = want - len;
    d->bot_state = len ? 1 : 3;
}

static void msc_command(struct usbsim_dev *d, const uint8_t *cbw)
{
    uint32_t want = (uint32_t)cbw[8] | (uint32_t)cbw[9] << 8 |
                    (uint32_t)cbw[10] << 16 | (uint32_t)cbw[11] << 24;
    const uint8_t *cdb = cbw + 15;
    uint8_t buf[64];

    memcpy(d->cbw_tag, cbw + 4, 4);
    d->csw_status = 0;
    d->residue = want;
    d->bot_state = 3;
    switch (cdb[0]) {
    case 0x00: /* TEST UNIT READY */
    case 0x1e: /* PREVENT ALLOW MEDIUM REMOVAL */
    case 0x1b: /* START STOP UNIT */
    case 0x35: /* SYNCHRONIZE CACHE */
        break;
    case 0x12: { /* INQUIRY */
        memset(buf, 0, 36);
        buf[1] = 0x80;  /* removable */
        buf[2] = 0x04;
        buf[3] = 0x02;
        buf[4] = 31;
        memcpy(buf + 8, "Ferry   ", 8);
        memcpy(buf + 16, "Sim RAM Disk    ", 16);
        memcpy(buf + 32, "0001", 4);
        msc_data_in(d, buf, 36, want);
        break;
    }
    case 0x03: /* REQUEST SENSE */
        memset(buf, 0, 18);
        buf[0] = 0x70;
        buf[2] = d->sense_key;
        buf[7] = 10;
        buf[12] = d->asc;
        msc_sense(d, 0, 0);
        msc_data_in(d, buf, 18, want);
        break;
    case 0x25: { /* READ CAPACITY(10) */
        uint32_t last = USBSIM_DISK_SECTORS - 1;
        uint8_t cap[8] = { last >> 24, last >> 16, last >> 8, last, 0, 0, 2, 0 };
        msc_data_in(d, cap, 8, want);
        break;
    }
    case 0x1a: { /* MODE SENSE(6): header only, not write protected */
        uint8_t hdr[4] = { 3, 0, 0, 0 };
        msc_data_in(d, hdr, 4, want);
        break;
    }
    case 0x5a: { /* MODE SENSE(10) */
        uint8_t hdr[8] = { 0, 6, 0, 0, 0, 0, 0, 0 };
        msc_data_in(d, hdr, 8, want);
        break;
    }
    case 0x28: case 0x2a: { /* READ(10), WRITE(10) */
        uint64_t lba = (uint32_t)cdb[2] << 24 | (uint32_t)cdb[3] << 16 |
                       (uint32_t)cdb[4] << 8 | cdb[5];
        uint32_t blocks = (uint32_t)cdb[7] << 8 | cdb[8];
        uint64_t bytes = (uint64_t)blocks * 512u;

        if (lba + blocks > USBSIM_DISK_SECTORS || bytes != want) {
            d->csw_status = 1;
            msc_sense(d, 0x05, 0x21);   /* LBA out of range */
            break;
        }
        if (cdb[0] == 0x28) {
            msc_data_in(d, d->disk + lba * 512u, (uint32_t)bytes, want);
        } else if (bytes) {
            d->out_off = lba * 512u;
            d->out_left = (uint32_t)bytes;
            d->residue = 0;
            d->bot_state = 2;
        }
        break;
    }
    default:
        d->csw_status = 1;
        msc_sense(d, 0x05, 0x20);       /* invalid command operation code */
        break;
    }
}

static void msc_pump(struct usbsim_dev *d)
{
    struct sim_urb *u;

    while ((d->bot_state == 1 || d->bot_state == 3) && (u = pending_take(d, 0x81))) {
        if (d->bot_state == 1) {
            uint32_t len = (uint32_t)urb_hdr(u)->buffer_length;
            if (len > d->xfer_len - d->xfer_pos)
                len = d->xfer_len - d->xfer_pos;
            urb_in(d, u, d->xfer + d->xfer_pos, len);
            d->xfer_pos += len;
            if (d->xfer_pos == d->xfer_len)
                d->bot_state = 3;
        } else {
            uint8_t csw[13] = { 'U', 'S', 'B', 'S' };
            memcpy(csw + 4, d->cbw_tag, 4);
            csw[8] = (uint8_t)d->residue;
            csw[9] = (uint8_t)(d->residue >> 8);
            csw[10] = (uint8_t)(d->residue >> 16);
            csw[11] = (uint8_t)(d->residue >> 24);
            csw[12] = d->csw_status;
            urb_in(d, u, csw, sizeof(csw));
            d->bot_state = 0;
        }
    }
}

static void msc_out(struct usbsim_dev *d, struct sim_urb *u)
{
    struct usbdevfs_urb *h = urb_hdr(u);
    uint32_t len = (uint32_t)h->buffer_length;
    const uint8_t *p = u->buf ? u->buf->data : NULL;

    if (d->bot_state == 2 && p) {
        if (len > d->out_left)
            len = d->out_left;
        memcpy(d->disk + d->out_off, p, len);
        d->out_off += len;
        d->out_left -= len;
        if (!d->out_left)
            d->bot_state = 3;
    } else if (d->bot_state == 0 && p && len == 31 && !memcmp(p, "USBC", 4)) {
        msc_command(d, p);
    } else {
        urb_complete(d, u, -EPIPE, 0);  /* protocol error: stall */
        return;
    }
    urb_complete(d, u, 0, (int)h->buffer_length);
    msc_pump(d);
}

/* ---- vendor: bulk loopback and iso IN ------------------------------------ */

static void vnd_pump(struct usbsim_dev *d)
{
    struct sim_urb *u;

    while (d->loop->len && (u = pending_take(d, 0x82))) {
        uint32_t len = (uint32_t)urb_hdr(u)->buffer_length;
        if (len > d->loop->len)
            len = d->loop->len;
        urb_in(d, u, d->loop->data, len);
        g_byte_array_remove_range(d->loop, 0, len);
    }
}

/* One iso packet: bytes counting up from its frame number, the number
 * itself (little-endian) in its last 4 bytes. */
static void iso_fill(uint8_t *p, unsigned len, uint32_t seq)
{
    for (unsigned k = 0; k < len; k++)
        p[k] = (uint8_t)(seq + k);
    if (len >= 8) {
        p[len - 4] = (uint8_t)seq;
        p[len - 3] = (uint8_t)(seq >> 8);
        p[len - 2] = (uint8_t)(seq >> 16);
        p[len - 1] = (uint8_t)(seq >> 24);
    }
}

static void vnd_iso(struct usbsim_dev *d, struct sim_urb *u)
{
    struct usbdevfs_urb *h = urb_hdr(u);
    struct usbdevfs_iso_packet_desc *fd;
    int n = h->number_of_packets, total = 0;
    size_t off = 0;

    if (!u->iso || !u->buf) {
        urb_complete(d, u, -EINVAL, 0);
        return;
    }
    fd = (struct usbdevfs_iso_packet_desc *)u->iso->data;
    if (d->iso_manual) {
        /* as usb_submit_urb: every packet "not transferred" until its frame */
        for (int i = 0; i < n; i++) {
            fd[i].actual_length = 0;
            fd[i].status = (unsigned)-EXDEV;
        }
        g_queue_push_tail(&d->pending, u);
        return;
    }
    for (int i = 0; i < n; i++) {
        unsigned len = fd[i].length;
        if (off + len > (size_t)u->buf->data_len)
            len = 0;
        iso_fill(u->buf->data + off, len, d->iso_seq);
        d->iso_seq++;
        fd[i].actual_length = len;
        fd[i].status = 0;
        off += fd[i].length;
        total += (int)len;
    }
    urb_complete(d, u, 0, total);
}

void usbsim_iso_manual(struct usbsim_dev *d, bool manual)
{
    g_mutex_lock(&d->lock);
    d->iso_manual = manual;
    g_mutex_unlock(&d->lock);
}

/* Frames pass on the bus: each fills the next packet of the oldest URB
 * waiting on 0x83; with none waiting, the frame's packet is lost. */
void usbsim_iso_tick(struct usbsim_dev *d, unsigned frames)
{
    g_mutex_lock(&d->lock);
    for (unsigned f = 0; f < frames; f++) {
        struct sim_urb *u = NULL;
        struct usbdevfs_iso_packet_desc *fd;
        size_t off = 0;
        unsigned len;

        for (GList *l = d->pending.head; l && !u; l = l->next) {
            struct sim_urb *x = l->data;
            if (x->ep == 0x83 && x->type == USBDEVFS_URB_TYPE_ISO)
                u = x;
        }
        d->iso.frames++;
        if (!u || !u->iso || !u->buf) {
            d->iso.lost++;
            d->iso_seq++;
            continue;
        }
        fd = (struct usbdevfs_iso_packet_desc *)u->iso->data;
        for (int i = 0; i < u->iso_filled; i++)
            off += fd[i].length;
        len = fd[u->iso_filled].length;
        if (off + len > (size_t)u->buf->data_len)
            len = 0;
        iso_fill(u->buf->data + off, len, d->iso_seq++);
        fd[u->iso_filled].actual_length = len;
        fd[u->iso_filled].status = 0;
        u->iso_filled++;
        u->iso_bytes += (int)len;
        d->iso.filled++;
        if (u->iso_filled == urb_hdr(u)->number_of_packets) {
            g_queue_remove(&d->pending, u);
            d->iso.completed_packets += (uint64_t)u->iso_filled;
            urb_complete(d, u, 0, u->iso_bytes);
        }
    }
    g_mutex_unlock(&d->lock);
}

void usbsim_streams(struct usbsim_dev *d, unsigned *allocs, unsigned *frees, unsigned *now)
{
    g_mutex_lock(&d->lock);
    *allocs = d->stream_allocs;
    *frees = d->stream_frees;
    *now = d->streams;
    g_mutex_unlock(&d->lock);
}

void usbsim_iso_stats(struct usbsim_dev *d, struct usbsim_iso_stats *st)
{
    g_mutex_lock(&d->lock);
    *st = d->iso;
    g_mutex_unlock(&d->lock);
}

/* ---- control transfers --------------------------------------------------- */

/* Returns the data-in length, 0 for a no-data success, -1 to stall. */
static int control(struct usbsim_dev *d, const uint8_t *setup, uint8_t *data, size_t max)
{
    uint8_t rt = setup[0], req = setup[1];
    uint16_t val = (uint16_t)(setup[2] | setup[3] << 8);
    uint16_t len = (uint16_t)(setup[6] | setup[7] << 8);
    size_t n;

    if (len < max)
        max = len;
    if (rt == 0x80 && req == USB_REQ_GET_DESCRIPTOR) {
        uint8_t tmp[256];
        const uint8_t *cfg;
        switch (val >> 8) {
        case USB_DT_DEVICE:
            dev_descriptor(d, tmp);
            n = 18;
            break;
        case USB_DT_CONFIG:
            cfg = dev_config(d, &n);
            memcpy(tmp, cfg, n);
            break;
        case USB_DT_STRING:
            n = dev_string(d, val & 0xff, tmp, sizeof(tmp));
            if (!n)
                return -1;
            break;
        default:
            return -1;
        }
        n = n < max ? n : max;
        memcpy(data, tmp, n);
        return (int)n;
    }
    if (rt == 0x81 && req == USB_REQ_GET_DESCRIPTOR && (val >> 8) == 0x22 &&
        d->kind == USBSIM_KEYBOARD) {
        n = sizeof(kbd_report_desc) < max ? sizeof(kbd_report_desc) : max;
        memcpy(data, kbd_report_desc, n);
        return (int)n;
    }
    if ((rt & 0x80) && req == USB_REQ_GET_STATUS && (rt & 0x60) == 0) {
        n = max < 2 ? max : 2;
        memset(data, 0, n);
        return (int)n;
    }
    if (rt == 0x80 && req == USB_REQ_GET_CONFIGURATION && max) {
        data[0] = 1;
        return 1;
    }
    if ((rt & 0x60) == 0 && !(rt & 0x80))   /* SET_CONFIGURATION, CLEAR_FEATURE, ... */
        return 0;
    if (d->kind == USBSIM_KEYBOARD && rt == 0x21)   /* SET_IDLE/PROTOCOL/REPORT */
        return 0;
    if (d->kind == USBSIM_KEYBOARD && rt == 0xa1) {
        n = req == 0x01 ? 8 : 1;
        n = n < max ? n : max;
        memset(data, 0, n);
        return (int)n;
    }
    if (d->kind == USBSIM_STORAGE && rt == 0xa1 && req == 0xfe && max) {
        data[0] = 0;   /* GET MAX LUN */
        return 1;
    }
    if (d->kind == USBSIM_STORAGE && rt == 0x21 && req == 0xff) {
        d->bot_state = 0;   /* bulk-only mass storage reset */
        return 0;
    }
    if (d->kind == USBSIM_VENDOR && (rt & 0x60) == 0x40) {
        for (size_t i = 0; (rt & 0x80) && i < max; i++)
            data[i] = (uint8_t)(req + i);
        return (rt & 0x80) ? (int)max : 0;
    }
    return -1;
}

/* ---- the ioctl handler (umockdev worker thread) ------------------------- */

static bool submit(struct usbsim_dev *d, UMockdevIoctlData *arg)
{
    GError *err = NULL;
    struct sim_urb *u;
    struct usbdevfs_urb *h;

    if (!arg || (size_t)arg->data_len < sizeof(*h))
        return false;
    h = (struct usbdevfs_urb *)arg->data;
    u = g_new0(struct sim_urb, 1);
    u->data = g_object_ref(arg);
    u->ep = h->endpoint;
    u->type = h->type;
    if (h->type == USBDEVFS_URB_TYPE_ISO && h->number_of_packets > 0 &&
        h->number_of_packets <= 128) {
        /* The frame descriptors follow the URB in the client's memory;
         * reach them through the error_count/signr slot, which the kernel
         * ignores on submit and libusb does not read back. */
        size_t slot = offsetof(struct usbdevfs_urb, error_count);
        *(unsigned long *)(arg->data + slot) = arg->client_addr + sizeof(*h);
        u->iso = umockdev_ioctl_data_resolve(arg, slot,
                    (size_t)h->number_of_packets * sizeof(struct usbdevfs_iso_packet_desc), &err);
        g_clear_error(&err);
    }
    if (h->buffer_length > 0) {
        u->buf = umockdev_ioctl_data_resolve(arg, offsetof(struct usbdevfs_urb, buffer),
                                             (size_t)h->buffer_length, &err);
        if (!u->buf) {
            g_clear_error(&err);
            urb_free(u);
            return false;
        }
    }
    h = urb_hdr(u);

    if (h->type == USBDEVFS_URB_TYPE_CONTROL) {
        uint8_t *p = u->buf ? u->buf->data : NULL;
        int r;
        if (!p || h->buffer_length < 8) {
            urb_complete(d, u, -EINVAL, 0);
            return true;
        }
        r = control(d, p, p + 8, (size_t)h->buffer_length - 8);
        if (r < 0)
            urb_complete(d, u, -EPIPE, 0);
        else
            urb_complete(d, u, 0, (p[0] & 0x80) ? r : (int)(p[6] | p[7] << 8));
        return true;
    }
    if (h->type == USBDEVFS_URB_TYPE_ISO) {
        vnd_iso(d, u);
        return true;
    }
    if (!(h->endpoint & 0x80)) {
        if (d->kind == USBSIM_STORAGE) {
            msc_out(d, u);
        } else if (d->kind == USBSIM_VENDOR && h->endpoint == 0x01) {
            if (d->loop->len + (size_t)h->buffer_length > SIM_LOOP_MAX) {
                urb_complete(d, u, -EOVERFLOW, 0);
            } else {
                if (u->buf)
                    g_byte_array_append(d->loop, u->buf->data, (guint)h->buffer_length);
                urb_complete(d, u, 0, h->buffer_length);
                vnd_pump(d);
            }
        } else {
            urb_complete(d, u, -EPIPE, 0);
        }
        return true;
    }
    g_queue_push_tail(&d->pending, u);
    if (d->kind == USBSIM_KEYBOARD)
        kbd_pump(d);
    else if (d->kind == USBSIM_STORAGE)
        msc_pump(d);
    else
        vnd_pump(d);
    return true;
}

static const char *default_driver(const struct usbsim_dev *d)
{
    return d->kind == USBSIM_KEYBOARD ? "usbhid" :
           d->kind == USBSIM_STORAGE ? "usb-storage" : NULL;
}

static int ifno_driver(struct usbsim_dev *d, unsigned ifno, int code, char *name, size_t len)
{
    const char *drv = default_driver(d);

    if (ifno >= 2 || (d->kind != USBSIM_VENDOR && ifno >= 1))
        return -EINVAL;
    switch (code) {
    case USBDEVFS_DISCONNECT:
        if (!d->bound[ifno])
            return -ENODATA;
        d->bound[ifno] = false;
        return 0;
    case USBDEVFS_CONNECT:
        d->bound[ifno] = drv != NULL;
        return 0;
    default:   /* GETDRIVER */
        if (!d->bound[ifno])
            return -ENODATA;
        g_strlcpy(name, drv, len);
        return 0;
    }
}

/* Does the configuration declare interface ifno with altsetting alt? */
static bool has_altsetting(const struct usbsim_dev *d, unsigned ifno, unsigned alt)
{
    size_t len, off = 0;
    const uint8_t *cfg = dev_config(d, &len);

    while (off + 2 <= len && cfg[off] >= 2 && off + cfg[off] <= len) {
        if (cfg[off + 1] == 0x04 && cfg[off] >= 4 && cfg[off + 2] == ifno && cfg[off + 3] == alt)
            return true;
        off += cfg[off];
    }
    return false;
}

static gboolean on_ioctl(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer opaque)
{
    struct usbsim_dev *d = opaque;
    unsigned long req = umockdev_ioctl_client_get_request(client);
    UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
    size_t size = _IOC_SIZE(req);
    UMockdevIoctlData *data = NULL;
    GError *err = NULL;
    long res = 0;
    int e = 0;

    if (size && req != USBDEVFS_DISCARDURB) {
        data = umockdev_ioctl_data_resolve(arg, 0, size, &err);
        if (!data) {
            g_clear_error(&err);
            umockdev_ioctl_client_complete(client, -1, EFAULT);
            return TRUE;
        }
    }
    g_mutex_lock(&d->lock);
    if (!d->present && req != USBDEVFS_REAPURBNDELAY && req != USBDEVFS_REAPURB) {
        g_mutex_unlock(&d->lock);
        umockdev_ioctl_client_complete(client, -1, ENODEV);
        return TRUE;
    }
    switch (req) {
    case USBDEVFS_GET_CAPABILITIES:
        *(uint32_t *)data->data = USBDEVFS_CAP_ZERO_PACKET | USBDEVFS_CAP_BULK_CONTINUATION |
                                  USBDEVFS_CAP_NO_PACKET_SIZE_LIM |
                                  USBDEVFS_CAP_BULK_SCATTER_GATHER |
                                  USBDEVFS_CAP_REAP_AFTER_DISCONNECT;
        break;
    case USBDEVFS_SETINTERFACE: {
        /* as the kernel (usb_set_interface): only an interface and
         * altsetting the configuration declares */
        const struct usbdevfs_setinterface *si = (const void *)data->data;
        if (!has_altsetting(d, si->interface, si->altsetting)) {
            res = -1;
            e = EINVAL;
        }
        break;
    }
    case USBDEVFS_SETCONFIGURATION: {
        /* as the kernel: 0 (unconfigured, -1 likewise) or the one
         * configuration's value */
        int cfg = *(const int *)data->data;
        if (cfg != 0 && cfg != -1 && cfg != 1) {
            res = -1;
            e = EINVAL;
        }
        break;
    }
    case USBDEVFS_CLAIMINTERFACE:
    case USBDEVFS_RELEASEINTERFACE:
    case USBDEVFS_CLEAR_HALT:
    case USBDEVFS_RESETEP:
    case USBDEVFS_RESET:
        break;
    case USBDEVFS_CONTROL: {     /* synchronous control transfer */
        struct usbdevfs_ctrltransfer *ct = (void *)data->data;
        uint8_t setup[8] = { ct->bRequestType, ct->bRequest, (uint8_t)ct->wValue,
                             (uint8_t)(ct->wValue >> 8), (uint8_t)ct->wIndex,
                             (uint8_t)(ct->wIndex >> 8), (uint8_t)ct->wLength,
                             (uint8_t)(ct->wLength >> 8) };
        UMockdevIoctlData *buf = NULL;
        int r;
        if (ct->wLength) {
            buf = umockdev_ioctl_data_resolve(data, offsetof(struct usbdevfs_ctrltransfer, data),
                                              ct->wLength, &err);
            g_clear_error(&err);
        }
        if (ct->wLength && !buf) {
            res = -1;
            e = EFAULT;
            break;
        }
        r = control(d, setup, buf ? buf->data : NULL, ct->wLength);
        if (r < 0) {
            res = -1;
            e = EPIPE;
        } else {
            res = (ct->bRequestType & 0x80) ? r : ct->wLength;
        }
        break;
    }
    case USBDEVFS_CONNECTINFO: {
        struct usbdevfs_connectinfo *ci = (void *)data->data;
        ci->devnum = (unsigned)d->devnum;
        ci->slow = 0;
        break;
    }
    case USBDEVFS_GET_SPEED:
        res = d->kind == USBSIM_KEYBOARD ? 2 /* full */ : 3 /* high */;
        break;
    case USBDEVFS_GETDRIVER: {
        struct usbdevfs_getdriver *gd = (void *)data->data;
        int r = ifno_driver(d, gd->interface, 0, gd->driver, sizeof(gd->driver));
        if (r < 0) {
            res = -1;
            e = -r;
        }
        break;
    }
    case USBDEVFS_DISCONNECT_CLAIM: {
        struct usbdevfs_disconnect_claim *dc = (void *)data->data;
        if (dc->interface < 2)
            d->bound[dc->interface] = false;
        break;
    }
    case USBDEVFS_IOCTL: {
        struct usbdevfs_ioctl *io = (void *)data->data;
        int r = ifno_driver(d, (unsigned)io->ifno, io->ioctl_code, NULL, 0);
        if (r < 0) {
            res = -1;
            e = -r;
        }
        break;
    }
    case USBDEVFS_ALLOC_STREAMS: {   /* as an xHCI would: what was asked */
        const struct usbdevfs_streams *st = (const void *)data->data;
        d->stream_allocs++;
        d->streams = st->num_streams;
        res = st->num_streams;
        break;
    }
    case USBDEVFS_FREE_STREAMS:
        d->stream_frees++;
        d->streams = 0;
        break;
    case USBDEVFS_SUBMITURB:
        if (!submit(d, data)) {
            res = -1;
            e = EINVAL;
        }
        break;
    case USBDEVFS_DISCARDURB: {
        unsigned long addr = *(unsigned long *)arg->data;
        GList *l;
        res = -1;
        e = EINVAL;
        for (l = d->pending.head; l; l = l->next) {
            struct sim_urb *u = l->data;
            if (u->data->client_addr == addr) {
                g_queue_delete_link(&d->pending, l);
                if (u->type == USBDEVFS_URB_TYPE_ISO) {
                    if (u->iso_filled && u->iso_filled < urb_hdr(u)->number_of_packets)
                        d->iso.partial_discards++;
                    d->iso.completed_packets += (uint64_t)u->iso_filled;
                }
                urb_complete(d, u, -ENOENT, u->iso_bytes);
                res = 0;
                e = 0;
                break;
            }
        }
        break;
    }
    case USBDEVFS_REAPURB:
    case USBDEVFS_REAPURBNDELAY: {
        struct sim_urb *u = g_queue_pop_head(&d->done);
        if (!u) {
            res = -1;
            e = d->present ? EAGAIN : ENODEV;
            break;
        }
        umockdev_ioctl_data_set_ptr(data, 0, u->data);
        g_clear_error(&err);
        /* data now references the URB's memory; our reference can go */
        g_object_unref(u->data);
        g_free(u);
        break;
    }
    default:
        res = -1;
        e = ENOTTY;
        break;
    }
    g_mutex_unlock(&d->lock);
    if (getenv("USBSIM_DEBUG") && req != USBDEVFS_REAPURBNDELAY)
        fprintf(stderr, "usbsim %s: ioctl nr %lu -> %ld errno %d\n", d->port,
                (unsigned long)_IOC_NR(req), res, e);
    umockdev_ioctl_client_complete(client, res, e);
    return TRUE;
}

/* Reading a usbfs node gives the device and configuration descriptors. */
static gboolean on_read(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer opaque)
{
    struct usbsim_dev *d = opaque;
    UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
    uint8_t desc[18 + 64];
    const uint8_t *cfg;
    size_t cfglen, n;

    dev_descriptor(d, desc);
    cfg = dev_config(d, &cfglen);
    memcpy(desc + 18, cfg, cfglen);
    n = 18 + cfglen;
    if (n > (size_t)arg->data_len)
        n = (size_t)arg->data_len;
    memcpy(arg->data, desc, n);
    umockdev_ioctl_client_complete(client, (long)n, 0);
    return TRUE;
}

/* ---- testbed ------------------------------------------------------------- */

static const uint8_t hub_desc[] = {
    18, 0x01, 0x00, 0x02, 0x09, 0x00, 0x01, 64, 0x6b, 0x1d, 0x02, 0x00,
    0x02, 0x06, 0, 0, 0, 1,
    0x09, 0x02, 25, 0, 0x01, 0x01, 0x00, 0xe0, 0x00,
    0x09, 0x04, 0x00, 0x00, 0x01, 0x09, 0x00, 0x00, 0x00,
    0x07, 0x05, 0x81, 0x03, 0x04, 0x00, 0x0c,
};

/* A hub (no ioctl handler: nobody opens it) at parent/name. */
static void add_hub(struct usbsim *sim, const char *parent, const char *name, int devnum)
{
    GString *s = g_string_new(NULL);
    GError *err = NULL;

    g_string_append_printf(s, "P: %s/%s\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\n"
                           "E: DEVNAME=/dev/bus/usb/001/%03d\nE: BUSNUM=001\nE: DEVNUM=%03d\n"
                           "A: busnum=1\\n\nA: devnum=%d\\n\nA: speed=480\\n\n"
                           "A: bConfigurationValue=1\\n\nA: idVendor=1d6b\\n\n"
                           "A: idProduct=0002\\n\nA: bDeviceClass=09\\n\n"
                           "A: product=Ferry Sim Hub\\n\nA: dev=189:%d\\n\n"
                           "H: descriptors=", parent, name, devnum, devnum, devnum, devnum - 1);
    for (size_t i = 0; i < sizeof(hub_desc); i++)
        g_string_append_printf(s, "%02X", hub_desc[i]);
    g_string_append(s, "\n\n");
    if (!umockdev_testbed_add_from_string(sim->tb, s->str, &err)) {
        fprintf(stderr, "usbsim: hub %s: %s\n", name, err->message);
        g_clear_error(&err);
    }
    g_string_free(s, TRUE);
}

struct usbsim *usbsim_new(void)
{
    struct usbsim *sim;

    sim = g_new0(struct usbsim, 1);
    sim->tb = umockdev_testbed_new();
    /* true only with the preload library redirecting /sys into the testbed */
    if (!umockdev_in_mock_environment()) {
        fprintf(stderr, "usbsim: not running under umockdev-wrapper\n");
        g_object_unref(sim->tb);
        g_free(sim);
        return NULL;
    }
    sim->root = umockdev_testbed_get_root_dir(sim->tb);
    sim->devs = g_ptr_array_new();
    sim->handlers = g_ptr_array_new_with_free_func(g_object_unref);
    for (unsigned i = 0; i < G_N_ELEMENTS(sim->next_devnum); i++)
        sim->next_devnum[i] = 2;
    /* the root hub of bus 1, so that libusb can walk port paths */
    add_hub(sim, "/devices/pci0000:00/0000:00:14.0", "usb1", 1);
    return sim;
}

const char *usbsim_root(struct usbsim *sim)
{
    return sim->root;
}

static int plug(struct usbsim *sim, struct usbsim_dev *d)
{
    GError *err = NULL;
    GString *s;
    uint8_t desc[18];
    const uint8_t *cfg;
    size_t cfglen;
    char name[64], hubpath[256];
    int bus = 1;

    d->busnum = bus;
    d->devnum = sim->next_devnum[bus]++;
    snprintf(d->devnode, sizeof(d->devnode), "/dev/bus/usb/%03d/%03d", bus, d->devnum);
    d->handler = umockdev_ioctl_base_new();
    g_signal_connect(d->handler, "handle-ioctl", G_CALLBACK(on_ioctl), d);
    g_signal_connect(d->handler, "handle-read", G_CALLBACK(on_read), d);
    if (!umockdev_testbed_attach_ioctl(sim->tb, d->devnode, d->handler, &err)) {
        fprintf(stderr, "usbsim: attach ioctl %s: %s\n", d->devnode, err->message);
        g_clear_error(&err);
        return -EIO;
    }
    g_ptr_array_add(sim->handlers, d->handler);

    g_mutex_lock(&d->lock);
    d->present = true;
    d->bound[0] = default_driver(d) != NULL;
    d->bound[1] = false;
    d->bot_state = 0;
    d->nreports = 0;
    g_mutex_unlock(&d->lock);

    /* the sysfs path nests hubs: usb1/1-3/1-3.1 */
    g_snprintf(hubpath, sizeof(hubpath), "/devices/pci0000:00/0000:00:14.0/usb1");
    {
        const char *p = strchr(d->port, '-');
        const char *dot = p ? strchr(p, '.') : NULL;
        while (dot) {
            char hub[32], full[300];
            size_t n = (size_t)(dot - d->port);
            if (n >= sizeof(hub))
                break;
            memcpy(hub, d->port, n);
            hub[n] = 0;
            snprintf(full, sizeof(full), "%s/sys%s/%s", sim->root, hubpath, hub);
            if (!g_file_test(full, G_FILE_TEST_IS_DIR))
                add_hub(sim, hubpath, hub, sim->next_devnum[bus]++);
            g_strlcat(hubpath, "/", sizeof(hubpath));
            g_strlcat(hubpath, hub, sizeof(hubpath));
            dot = strchr(dot + 1, '.');
        }
    }
    dev_descriptor(d, desc);
    cfg = dev_config(d, &cfglen);
    s = g_string_new(NULL);
    /* interfaces first, so that they exist when the device's uevent goes out */
    for (unsigned i = 0; i < (d->kind == USBSIM_VENDOR ? 2u : 1u); i++) {
        snprintf(name, sizeof(name), "%s:1.%u", d->port, i);
        g_string_append_printf(s, "P: %s/%s/%s\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_interface\n"
                               "A: bInterfaceNumber=%02u\\n\nA: bInterfaceClass=%02x\\n\n",
                               hubpath, d->port, name, i,
                               d->kind == USBSIM_KEYBOARD ? 3 : d->kind == USBSIM_STORAGE ? 8 : 0xff);
        if (i == 0 && default_driver(d))
            g_string_append_printf(s, "L: driver=../../../../../../../bus/usb/drivers/%s\n",
                                   default_driver(d));
        g_string_append(s, "\n");
    }
    g_string_append_printf(s, "P: %s/%s\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\n"
                           "E: DEVNAME=%s\nE: BUSNUM=%03d\nE: DEVNUM=%03d\n"
                           "E: PRODUCT=%x/%x/100\n"
                           "A: busnum=%d\\n\nA: devnum=%d\\n\nA: speed=%s\\n\n"
                           "A: bConfigurationValue=1\\n\nA: idVendor=%04x\\n\nA: idProduct=%04x\\n\n"
                           "A: bDeviceClass=00\\n\nA: manufacturer=Ferry\\n\nA: product=%s\\n\n"
                           "A: dev=189:%d\\n\nN: %s\n",
                           hubpath, d->port, d->devnode, bus, d->devnum,
                           USBSIM_VID, dev_pid(d), bus, d->devnum,
                           d->kind == USBSIM_KEYBOARD ? "12" : "480",
                           USBSIM_VID, dev_pid(d), dev_product(d),
                           (bus - 1) * 128 + d->devnum - 1, d->devnode + 5);
    if (d->has_serial)
        g_string_append_printf(s, "A: serial=%s\\n\n", d->serial);
    g_string_append(s, "H: descriptors=");
    for (size_t i = 0; i < 18; i++)
        g_string_append_printf(s, "%02X", desc[i]);
    for (size_t i = 0; i < cfglen; i++)
        g_string_append_printf(s, "%02X", cfg[i]);
    g_string_append(s, "\n\n");
    g_free(d->syspath);
    d->syspath = g_strdup_printf("/sys%s/%s", hubpath, d->port);
    if (!umockdev_testbed_add_from_string(sim->tb, s->str, &err)) {
        fprintf(stderr, "usbsim: add %s: %s\n", d->port, err->message);
        g_clear_error(&err);
        g_string_free(s, TRUE);
        return -EIO;
    }
    g_string_free(s, TRUE);
    return 0;
}

struct usbsim_dev *usbsim_add(struct usbsim *sim, enum usbsim_kind kind,
                              const char *port, const char *serial)
{
    struct usbsim_dev *d = g_new0(struct usbsim_dev, 1);

    d->sim = sim;
    d->kind = kind;
    g_strlcpy(d->port, port, sizeof(d->port));
    if (serial) {
        d->has_serial = true;
        g_strlcpy(d->serial, serial, sizeof(d->serial));
    }
    g_mutex_init(&d->lock);
    g_queue_init(&d->pending);
    g_queue_init(&d->done);
    if (kind == USBSIM_STORAGE)
        d->disk = g_malloc0(SIM_DISK_BYTES);
    d->loop = g_byte_array_new();
    if (plug(sim, d) < 0) {
        g_free(d->disk);
        g_byte_array_unref(d->loop);
        g_free(d);
        return NULL;
    }
    g_ptr_array_add(sim->devs, d);
    return d;
}

void usbsim_unplug(struct usbsim *sim, struct usbsim_dev *d)
{
    struct sim_urb *u;

    g_mutex_lock(&d->lock);
    if (!d->present) {
        g_mutex_unlock(&d->lock);
        return;
    }
    d->present = false;
    while ((u = g_queue_pop_head(&d->pending)))
        urb_complete(d, u, -ENODEV, 0);
    g_mutex_unlock(&d->lock);
    /* umockdev 0.17 removes without a uevent: send the kernel's first */
    umockdev_testbed_uevent(sim->tb, d->syspath, "remove");
    umockdev_testbed_remove_device(sim->tb, d->syspath);
    /* ... and leaves the /sys/bus links behind, which a replug trips over */
    for (unsigned i = 0; i < 3; i++) {
        char *link = i == 2 ? g_strdup_printf("%s/sys/bus/usb/devices/%s", sim->root, d->port)
                            : g_strdup_printf("%s/sys/bus/usb/devices/%s:1.%u", sim->root,
                                              d->port, i);
        unlink(link);
        g_free(link);
    }
}

int usbsim_replug(struct usbsim *sim, struct usbsim_dev *d)
{
    if (d->present)
        return 0;
    return plug(sim, d);
}

bool usbsim_present(struct usbsim_dev *d)
{
    bool p;

    g_mutex_lock(&d->lock);
    p = d->present;
    g_mutex_unlock(&d->lock);
    return p;
}

int usbsim_busnum(struct usbsim_dev *d) { return d->busnum; }
int usbsim_devnum(struct usbsim_dev *d) { return d->devnum; }
const char *usbsim_devnode(struct usbsim_dev *d) { return d->devnode; }

void usbsim_disk_read(struct usbsim_dev *d, uint64_t off, void *buf, size_t len)
{
    g_mutex_lock(&d->lock);
    if (d->disk && off <= SIM_DISK_BYTES && len <= SIM_DISK_BYTES - off)
        memcpy(buf, d->disk + off, len);
    g_mutex_unlock(&d->lock);
}

void usbsim_disk_write(struct usbsim_dev *d, uint64_t off, const void *buf, size_t len)
{
    g_mutex_lock(&d->lock);
    if (d->disk && off <= SIM_DISK_BYTES && len <= SIM_DISK_BYTES - off)
        memcpy(d->disk + off, buf, len);
    g_mutex_unlock(&d->lock);
}

void usbsim_driver(struct usbsim_dev *d, char *buf, size_t len)
{
    g_mutex_lock(&d->lock);
    g_strlcpy(buf, d->bound[0] && default_driver(d) ? default_driver(d) : "", len);
    g_mutex_unlock(&d->lock);
}

uint64_t usbsim_urbs_done(struct usbsim_dev *d)
{
    uint64_t n;

    g_mutex_lock(&d->lock);
    n = d->urbs_done;
    g_mutex_unlock(&d->lock);
    return n;
}

unsigned usbsim_urbs_pending(struct usbsim_dev *d)
{
    unsigned n;

    g_mutex_lock(&d->lock);
    n = g_queue_get_length(&d->pending);
    g_mutex_unlock(&d->lock);
    return n;
}

void usbsim_free(struct usbsim *sim)
{
    if (!sim)
        return;
    for (guint i = 0; i < sim->devs->len; i++) {
        struct usbsim_dev *d = g_ptr_array_index(sim->devs, i);
        struct sim_urb *u;
        while ((u = g_queue_pop_head(&d->pending)))
            urb_free(u);
        while ((u = g_queue_pop_head(&d->done)))
            urb_free(u);
        g_free(d->disk);
        g_free(d->xfer);
        g_free(d->syspath);
        g_byte_array_unref(d->loop);
        g_mutex_clear(&d->lock);
        g_free(d);
    }
    g_ptr_array_unref(sim->devs);
    g_ptr_array_unref(sim->handlers);
    g_object_unref(sim->tb);
    g_free(sim->root);
    g_free(sim);
}
