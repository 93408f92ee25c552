// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * MC146818 RTC and CMOS RAM at ports 0x70 (index; bit 7 masks NMI) and
 * 0x71 (data), IRQ 8.
 *
 * The clock is the host's real time plus an offset the guest sets by
 * writing the time registers (with REG_B SET, or one register at a time).
 * BCD or binary (REG_B DM) and 12 or 24 hours (REG_B 24/12) as the guest
 * chooses; the century lives in CMOS byte 0x32 (the FADT's CENTURY).  What
 * the guest writes is clamped to valid fields and to the years 1900-2199.
 * Interrupts: periodic (REG_A rate, REG_B PIE), update-ended (UIE) and
 * alarm (AIE, with "don't care" values 0xc0-0xff); REG_C reports and
 * clears them.  UIP reads 1 in the 244 us before each second.  An alarm
 * with AIE set wakes a guest suspended to RAM (S3) whose PM block has
 * RTC_EN set (dm_wakeup).
 *
 * Options: irq=8
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "devmodel/dm.h"

#define RTC_SEC         0x00
#define RTC_SEC_ALARM   0x01
#define RTC_MIN         0x02
#define RTC_MIN_ALARM   0x03
#define RTC_HOUR        0x04
#define RTC_HOUR_ALARM  0x05
#define RTC_WDAY        0x06
#define RTC_MDAY        0x07
#define RTC_MONTH       0x08
#define RTC_YEAR        0x09
#define RTC_REG_A       0x0a
#define RTC_REG_B       0x0b
#define RTC_REG_C       0x0c
#define RTC_REG_D       0x0d
#define RTC_CENTURY     0x32

#define REG_A_UIP       0x80
#define REG_B_SET       0x80
#define REG_B_PIE       0x40
#define REG_B_AIE       0x20
#define REG_B_UIE       0x10
#define REG_B_DM        0x04
#define REG_B_24H       0x02
#define REG_C_IRQF      0x80
#define REG_C_PF        0x40
#define REG_C_AF        0x20
#define REG_C_UF        0x10

#define NS              1000000000ll
#define UIP_NS          244000ll
#define RTC_SAVE_VERSION 1

/* 200 years: host wall clock + offset stays far inside int64 nanoseconds
 * and covers every date the registers can hold (1900-2199) from today. */
#define RTC_OFFSET_MAX_NS (200LL * 366 * 86400 * NS)

struct rtc_regs {
    uint8_t cmos[128];
    uint8_t index;
    uint8_t nmi_masked;
    int64_t offset_ns;          /* guest time = host real time + offset */
};

struct rtc {
    struct ferry_dm_device *dev;
    struct ferry_dm *dm;
    struct ferry_dm_irq *irq;
    struct event *periodic, *update;
    struct rtc_regs r;
};

static uint8_t to_bcd(unsigned v)
{
    return (uint8_t)(((v / 10) % 10) << 4 | (v % 10));
}

static unsigned from_bcd(uint8_t v)
{
    return (v >> 4) * 10u + (v & 0x0f);
}

static uint8_t enc(const struct rtc *s, unsigned v)
{
    return (s->r.cmos[RTC_REG_B] & REG_B_DM) ? (uint8_t)v : to_bcd(v);
}

static unsigned dec(const struct rtc *s, uint8_t v)
{
    return (s->r.cmos[RTC_REG_B] & REG_B_DM) ? v : from_bcd(v);
}

static uint8_t enc_hour(const struct rtc *s, unsigned h)
{
    if (s->r.cmos[RTC_REG_B] & REG_B_24H)
        return enc(s, h);
    return (uint8_t)(enc(s, h % 12 ? h % 12 : 12) | (h >= 12 ? 0x80 : 0));
}

static unsigned dec_hour(const struct rtc *s, uint8_t v)
{
    unsigned h;

    if (s->r.cmos[RTC_REG_B] & REG_B_24H)
        return dec(s, v);
    h = dec(s, v & 0x7f) % 12;
    return (v & 0x80) ? h + 12 : h;
}

static int64_t guest_ns(struct rtc *s)
{
    return dm_wall_ns(s->dm) + s->r.offset_ns;
}

/* Time registers from the running clock. */
static void rtc_sync(struct rtc *s)
{
    int64_t ns = guest_ns(s);
    time_t t = (time_t)(ns >= 0 ? ns / NS : (ns - NS + 1) / NS);
    struct tm tm;

    if (s->r.cmos[RTC_REG_B] & REG_B_SET)
        return;         /* frozen while the guest sets the time */
    if (!gmtime_r(&t, &tm))
        return;         /* unreachable with a checked offset; keep the registers */
    s->r.cmos[RTC_SEC] = enc(s, (unsigned)tm.tm_sec);
    s->r.cmos[RTC_MIN] = enc(s, (unsigned)tm.tm_min);
    s->r.cmos[RTC_HOUR] = enc_hour(s, (unsigned)tm.tm_hour);
    s->r.cmos[RTC_WDAY] = enc(s, (unsigned)tm.tm_wday + 1);
    s->r.cmos[RTC_MDAY] = enc(s, (unsigned)tm.tm_mday);
    s->r.cmos[RTC_MONTH] = enc(s, (unsigned)tm.tm_mon + 1);
    s->r.cmos[RTC_YEAR] = enc(s, (unsigned)(tm.tm_year + 1900) % 100);
    s->r.cmos[RTC_CENTURY] = enc(s, (unsigned)(tm.tm_year + 1900) / 100);
}

static unsigned clamp(unsigned v, unsigned lo, unsigned hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The offset from what the guest wrote (garbage is clamped, never trusted). */
static void rtc_set_from_regs(struct rtc *s)
{
    struct tm tm = { 0 };
    int64_t now = dm_wall_ns(s->dm);
    time_t t;

    tm.tm_sec = (int)clamp(dec(s, s->r.cmos[RTC_SEC]), 0, 59);
    tm.tm_min = (int)clamp(dec(s, s->r.cmos[RTC_MIN]), 0, 59);
    tm.tm_hour = (int)clamp(dec_hour(s, s->r.cmos[RTC_HOUR]), 0, 23);
    tm.tm_mday = (int)clamp(dec(s, s->r.cmos[RTC_MDAY]), 1, 31);
    tm.tm_mon = (int)clamp(dec(s, s->r.cmos[RTC_MONTH]), 1, 12) - 1;
    /* Years 1900-2199: the clock in ns stays far from int64 overflow. */
    tm.tm_year = (int)(clamp(dec(s, s->r.cmos[RTC_CENTURY]), 19, 21) * 100 +
                       clamp(dec(s, s->r.cmos[RTC_YEAR]), 0, 99)) - 1900;
    t = timegm(&tm);
    /* Keep the sub-second phase of the host clock. */
    s->r.offset_ns = (int64_t)t * NS - (now - now % NS);
}

static void rtc_update_irq(struct rtc *s)
{
    uint8_t c = s->r.cmos[RTC_REG_C] & (REG_C_PF | REG_C_AF | REG_C_UF);
    uint8_t en = s->r.cmos[RTC_REG_B] & (REG_B_PIE | REG_B_AIE | REG_B_UIE);

    if (c & en)     /* PF/AF/UF line up with PIE/AIE/UIE */
        s->r.cmos[RTC_REG_C] |= REG_C_IRQF;
    dm_irq_set(s->irq, s->r.cmos[RTC_REG_C] & REG_C_IRQF);
}

static int64_t periodic_ns(const struct rtc *s)
{
    unsigned rs = s->r.cmos[RTC_REG_A] & 0x0f;

    if (rs == 0 || (s->r.cmos[RTC_REG_A] & 0x70) != 0x20)
        return 0;       /* no rate, or divider not in normal operation */
    if (rs <= 2)
        rs += 7;
    return ((int64_t)1 << (rs - 1)) * NS / 32768;
}

static void arm(struct event *ev, int64_t ns)
{
    struct timeval tv = { .tv_sec = ns / NS, .tv_usec = (ns % NS) / 1000 };

    if (ev)
        evtimer_add(ev, &tv);
}

static void rtc_periodic_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rtc *s = arg;
    int64_t p = periodic_ns(s);

    if (!p || !(s->r.cmos[RTC_REG_B] & REG_B_PIE))
        return;
    s->r.cmos[RTC_REG_C] |= REG_C_PF;
    rtc_update_irq(s);
    arm(s->periodic, p);
}

static bool alarm_match(const struct rtc *s, unsigned alarm_reg, unsigned time_reg)
{
    uint8_t a = s->r.cmos[alarm_reg];

    return (a & 0xc0) == 0xc0 || a == s->r.cmos[time_reg];
}

static void rtc_update_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rtc *s = arg;
    int64_t ns = guest_ns(s);
    bool alarm = false;

    if (!(s->r.cmos[RTC_REG_B] & REG_B_SET)) {
        rtc_sync(s);
        s->r.cmos[RTC_REG_C] |= REG_C_UF;
        if (alarm_match(s, RTC_SEC_ALARM, RTC_SEC) && alarm_match(s, RTC_MIN_ALARM, RTC_MIN) &&
            alarm_match(s, RTC_HOUR_ALARM, RTC_HOUR)) {
            s->r.cmos[RTC_REG_C] |= REG_C_AF;
            alarm = s->r.cmos[RTC_REG_B] & REG_B_AIE;
        }
        rtc_update_irq(s);
    }
    if (s->r.cmos[RTC_REG_B] & (REG_B_UIE | REG_B_AIE))
        arm(s->update, NS - ((ns % NS) + NS) % NS + 1000);
    /*
     * An alarm that raises the RTC's interrupt is a wake event for a guest
     * in S3 (if it enabled RTC_EN).  Last: waking resets this device too.
     */
    if (alarm && dm_get_status(s->dm) == FERRY_DM_SUSPENDED)
        dm_wakeup(s->dm, FERRY_DM_WAKE_RTC);
}

/* (Re)start the timers the current REG_A/REG_B ask for. */
static void rtc_timers(struct rtc *s)
{
    int64_t p = periodic_ns(s);
    int64_t ns = guest_ns(s);

    if (s->periodic) {
        evtimer_del(s->periodic);
        if (p && (s->r.cmos[RTC_REG_B] & REG_B_PIE))
            arm(s->periodic, p);
    }
    if (s->update) {
        evtimer_del(s->update);
        if (s->r.cmos[RTC_REG_B] & (REG_B_UIE | REG_B_AIE))
            arm(s->update, NS - ((ns % NS) + NS) % NS + 1000);
    }
}

static uint64_t rtc_read(void *opaque, uint64_t off, unsigned size)
{
    struct rtc *s = opaque;
    uint8_t idx = s->r.index, v;

    if (off == 0)
        return 0xff;    /* the index register is write-only */
    switch (idx) {
    case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_WDAY:
    case RTC_MDAY: case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
        rtc_sync(s);
        return s->r.cmos[idx];
    case RTC_REG_A: {
        int64_t ns = guest_ns(s);
        int64_t frac = ((ns % NS) + NS) % NS;

        v = s->r.cmos[RTC_REG_A] & 0x7f;
        if (!(s->r.cmos[RTC_REG_B] & REG_B_SET) && frac >= NS - UIP_NS)
            v |= REG_A_UIP;
        return v;
    }
    case RTC_REG_C:
        v = s->r.cmos[RTC_REG_C];
        s->r.cmos[RTC_REG_C] = 0;
        rtc_update_irq(s);
        return v;
    default:
        return s->r.cmos[idx];
    }
}

static void rtc_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct rtc *s = opaque;
    uint8_t v = (uint8_t)val, idx;

    if (off == 0) {
        s->r.index = v & 0x7f;
        s->r.nmi_masked = !!(v & 0x80);
        return;
    }
    idx = s->r.index;
    switch (idx) {
    case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_WDAY:
    case RTC_MDAY: case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
        if (s->r.cmos[RTC_REG_B] & REG_B_SET) {
            s->r.cmos[idx] = v;
        } else {
            rtc_sync(s);
            s->r.cmos[idx] = v;
            rtc_set_from_regs(s);
        }
        return;
    case RTC_REG_A:
        s->r.cmos[RTC_REG_A] = v & 0x7f;        /* UIP is read-only */
        rtc_timers(s);
        return;
    case RTC_REG_B: {
        uint8_t old = s->r.cmos[RTC_REG_B];

        if (!(old & REG_B_SET) && (v & REG_B_SET))
            rtc_sync(s);                        /* freeze the current time */
        s->r.cmos[RTC_REG_B] = v;
        if ((old & REG_B_SET) && !(v & REG_B_SET))
            rtc_set_from_regs(s);
        else if ((old ^ v) & (REG_B_DM | REG_B_24H))
            rtc_sync(s);                        /* re-encode in the new format */
        rtc_update_irq(s);
        rtc_timers(s);
        return;
    }
    case RTC_REG_C:
    case RTC_REG_D:
        return;                                 /* read-only */
    default:
        s->r.cmos[idx] = v;
    }
}

static const struct ferry_dm_region_ops rtc_ops = {
    .read = rtc_read,
    .write = rtc_write,
    .max_size = 1,
};

static void rtc_reset(void *state)
{
    struct rtc *s = state;

    /* Time, century and CMOS RAM survive a reset; control registers do not. */
    s->r.cmos[RTC_REG_A] = 0x26;                /* 32.768 kHz, 1024 Hz rate */
    s->r.cmos[RTC_REG_B] = REG_B_24H;           /* BCD, 24 hours, no interrupts */
    s->r.cmos[RTC_REG_C] = 0;
    s->r.cmos[RTC_REG_D] = 0x80;                /* battery good */
    s->r.cmos[0x15] = 0x80;                     /* 640 KiB base memory */
    s->r.cmos[0x16] = 0x02;
    s->r.nmi_masked = 0;
    rtc_sync(s);
    rtc_update_irq(s);
    rtc_timers(s);
}

static int rtc_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                    void **state)
{
    static const char *const known[] = { "irq", NULL };
    struct event_base *base = dm_event_base(dm_device_dm(dev));
    const char *bad = NULL;
    uint64_t irq;
    struct rtc *s;
    int rc;

    if (dm_opts_check(opts, known, &bad) < 0 ||
        dm_opts_get_u64(opts, "irq", 8, 1023, &irq) < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "bad option%s%s (irq=N)", bad ? " " : "",
                         bad ? bad : "");
        return -EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->dev = dev;
    s->dm = dm_device_dm(dev);
    rc = dm_irq_add(dev, (uint32_t)irq, FERRY_DM_IRQ_EDGE, &s->irq);
    if (rc < 0)
        goto err_free;
    rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, 0x70, 2, &rtc_ops, s, 0, NULL);
    if (rc < 0)
        goto err_free;
    if (base) {
        s->periodic = evtimer_new(base, rtc_periodic_cb, s);
        s->update = evtimer_new(base, rtc_update_cb, s);
        if (!s->periodic || !s->update) {
            rc = -ENOMEM;
            goto err_timers;
        }
    }
    s->r.cmos[RTC_CENTURY] = 0x20;
    *state = s;
    return 0;
err_timers:
    if (s->periodic)
        event_free(s->periodic);
    if (s->update)
        event_free(s->update);
err_free:
    free(s);
    return rc;
}

static void rtc_exit(void *state)
{
    struct rtc *s = state;

    if (s->periodic)
        event_free(s->periodic);
    if (s->update)
        event_free(s->update);
    free(s);
}

static int rtc_save(void *state, GByteArray *out)
{
    struct rtc *s = state;
    uint8_t version = RTC_SAVE_VERSION;

    g_byte_array_append(out, &version, 1);
    g_byte_array_append(out, (const guint8 *)&s->r, sizeof(s->r));
    return 0;
}

static int rtc_restore(void *state, const uint8_t *buf, size_t len)
{
    struct rtc *s = state;
    struct rtc_regs r;

    if (len != 1 + sizeof(r) || buf[0] != RTC_SAVE_VERSION)
        return -EINVAL;
    memcpy(&r, buf + 1, sizeof(r));
    /* A saved offset comes from a file, not from this device: one that could
     * overflow guest_ns() (or leave 1900-2199) is refused, not clamped. */
    if (r.offset_ns > RTC_OFFSET_MAX_NS || r.offset_ns < -RTC_OFFSET_MAX_NS)
        return -ERANGE;
    r.index &= 0x7f;
    s->r = r;
    rtc_update_irq(s);
    rtc_timers(s);
    return 0;
}

static void rtc_query(void *state, json_t *b)
{
    struct rtc *s = state;
    int64_t ns = guest_ns(s);

    json_object_set_new(b, "nmi-masked", json_boolean(s->r.nmi_masked));
    json_object_set_new(b, "guest-time", json_integer(ns / NS));
    json_object_set_new(b, "offset-seconds", json_integer(s->r.offset_ns / NS));
}

FERRY_SYSCALL_LIST_NONE(rtc_syscalls, "rtc",
    "the host clock from clock_gettime, timers on the event loop");

const struct ferry_dm_device_type rtc_device = {
    .name = "rtc",
    .desc = "MC146818 RTC and CMOS (ports 0x70-0x71, irq=8)",
    .syscalls = &rtc_syscalls,
    .init = rtc_init,
    .exit = rtc_exit,
    .reset = rtc_reset,
    .save = rtc_save,
    .restore = rtc_restore,
    .query = rtc_query,
};
FERRY_DM_DEVICE_TYPE(rtc_device)
