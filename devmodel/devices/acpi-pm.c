// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ACPI fixed-hardware power-management block at Xen's modern addresses:
 *
 *   PM1a_EVT  0xb000 len 4   PM1_STS (write 1 to clear) at +0, PM1_EN at +2
 *   PM1a_CNT  0xb004 len 2   SCI_EN, SLP_TYP (bits 10-12), SLP_EN (bit 13)
 *   PM_TMR    0xb008 len 4   3.579545 MHz, 32 bits (FADT flag TMR_VAL_EXT)
 *   GPE0_BLK  0xafe0 len 4   GPE0_STS at +0 (write 1 to clear), GPE0_EN at +2
 *   SCI       GSI 9, level
 *
 * Sleep: writing SLP_EN with SLP_TYP = 0 is S5 (soft off): the guest is
 * powered off through the hypervisor.  0 is PIIX4's soft-off code, the
 * value Xen's and QEMU's DSDTs and Ferry's libacpi declare in
 * \_S5 = Package {0, 0, 0, 0}; s5-slp-typ=N selects another value for
 * tables that declare one.  SLP_TYP = 1 (PIIX4's, QEMU's and libacpi's
 * \_S3; s3-slp-typ=N) is S3, suspend to RAM: the hypervisor stops the
 * vCPUs and keeps memory.  A wake event (the RTC alarm when the guest set
 * RTC_EN, the power button, the control socket's system_wakeup) resets
 * every device, as the platform does, sets WAK_STS and the source's
 * status bit (RTC_STS; PWRBTN_STS for the button and, as QEMU does, for
 * system_wakeup) and resumes the guest at its FACS waking vector.  Other
 * SLP_TYP values (S1, S2, S4) are ignored with a log line.  SCI_EN reads 1 from
 * reset: there is no SMM firmware to hand over from (FADT SMI_CMD = 0).
 * The power button (control socket: system_powerdown) sets PWRBTN_STS.
 *
 * Options: sci=9, s5-slp-typ=N (default 0, libacpi's \_S5),
 *          s3-slp-typ=N|none (default 1, libacpi's \_S3; none: no S3)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "devmodel/dm.h"

#define PM1_EVT_BASE    0xb000
#define PM1_CNT_BASE    0xb004
#define PM_TMR_BASE     0xb008
#define GPE0_BASE       0xafe0

#define PM_TMR_HZ       3579545ull
#define ACPI_SLP_TYP_S5 0       /* libacpi's \_S5 */
#define ACPI_S5_DEFAULT (1u << ACPI_SLP_TYP_S5)     /* SLP_TYP values meaning S5 */
#define ACPI_SLP_TYP_S3 1       /* libacpi's \_S3 */

#define STS_TMR         0x0001
#define STS_BM          0x0010
#define STS_GBL         0x0020
#define STS_PWRBTN      0x0100
#define STS_SLPBTN      0x0200
#define STS_RTC         0x0400
#define STS_WAK         0x8000
#define EN_MASK         (STS_TMR | STS_GBL | STS_PWRBTN | STS_SLPBTN | STS_RTC)

#define CNT_SCI_EN      0x0001
#define CNT_SLP_TYP(v)  (((v) >> 10) & 7)
#define CNT_SLP_EN      0x2000

#define PM_SAVE_VERSION 1

struct pm_regs {
    uint16_t pm1_sts, pm1_en, pm1_cnt;
    uint16_t gpe_sts, gpe_en;
    uint32_t tmr_msb;           /* bit 31 of the timer when TMR_STS was last judged */
    uint64_t tmr_base_ns;       /* clock at which the timer read 0 */
};

struct acpi_pm {
    struct ferry_dm_device *dev;
    struct ferry_dm *dm;
    struct ferry_dm_irq *sci;
    struct event *tmr_ev;
    struct pm_regs r;
    unsigned sleeps;            /* S5 requests seen */
    unsigned suspends, wakes;   /* S3 entries and wake-ups */
    uint8_t s5_mask;            /* bit n: SLP_TYP n is S5 */
    uint8_t s3_mask;            /* bit n: SLP_TYP n is S3 (0: no S3) */
};

static uint64_t tmr_ticks(struct acpi_pm *pm)
{
    uint64_t ns = dm_clock_ns(pm->dm) - pm->r.tmr_base_ns;

    return (uint64_t)((unsigned __int128)ns * PM_TMR_HZ / 1000000000u);
}

/* TMR_STS is set each time bit 31 of the counter changes. */
static void tmr_check(struct acpi_pm *pm)
{
    uint32_t msb = (uint32_t)(tmr_ticks(pm) >> 31);

    if (msb != pm->r.tmr_msb) {
        pm->r.tmr_msb = msb;
        pm->r.pm1_sts |= STS_TMR;
    }
}

static void pm_update_sci(struct acpi_pm *pm)
{
    bool level = (pm->r.pm1_cnt & CNT_SCI_EN) &&
                 ((pm->r.pm1_sts & pm->r.pm1_en & EN_MASK) || (pm->r.gpe_sts & pm->r.gpe_en));

    dm_irq_set(pm->sci, level);
}

static void tmr_arm(struct acpi_pm *pm);

static void tmr_cb(evutil_socket_t fd, short what, void *arg)
{
    struct acpi_pm *pm = arg;

    tmr_check(pm);
    pm_update_sci(pm);
    tmr_arm(pm);
}

/* While TMR_EN is set, wake at the next change of bit 31 (about every 10 minutes). */
static void tmr_arm(struct acpi_pm *pm)
{
    uint64_t ticks, next, ns;
    struct timeval tv;

    if (!pm->tmr_ev)
        return;
    evtimer_del(pm->tmr_ev);
    if (!(pm->r.pm1_en & STS_TMR))
        return;
    ticks = tmr_ticks(pm);
    next = ((ticks >> 31) + 1) << 31;
    ns = (uint64_t)((unsigned __int128)(next - ticks) * 1000000000u / PM_TMR_HZ) + 1000;
    tv.tv_sec = (time_t)(ns / 1000000000u);
    tv.tv_usec = (suseconds_t)(ns % 1000000000u / 1000);
    evtimer_add(pm->tmr_ev, &tv);
}

/* Byte i of a 16-bit register pair laid out as lo16 | hi16 << 16. */
static uint64_t pair_read(uint16_t lo, uint16_t hi, uint64_t off, unsigned size)
{
    uint32_t v = (uint32_t)lo | (uint32_t)hi << 16;

    return (v >> (8 * off)) & (size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1);
}

/* Split a write to a STS/EN pair into its two halves: mask says which bytes. */
static void pair_write(uint64_t off, unsigned size, uint64_t val, uint16_t *sts_w1c,
                       uint16_t *sts_mask, uint16_t *en_val, uint16_t *en_mask)
{
    uint32_t v = (uint32_t)(val << (8 * off));
    uint32_t m = (size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1) << (8 * off);

    *sts_w1c = (uint16_t)(v & m);
    *sts_mask = (uint16_t)m;
    *en_val = (uint16_t)(v >> 16);
    *en_mask = (uint16_t)(m >> 16);
}

static uint64_t evt_read(void *opaque, uint64_t off, unsigned size)
{
    struct acpi_pm *pm = opaque;

    tmr_check(pm);
    return pair_read(pm->r.pm1_sts, pm->r.pm1_en, off, size);
}

static void evt_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct acpi_pm *pm = opaque;
    uint16_t w1c, sm, en, em;

    if (off + size > 4)
        return;
    pair_write(off, size, val, &w1c, &sm, &en, &em);
    tmr_check(pm);
    pm->r.pm1_sts &= ~w1c;
    pm->r.pm1_en = (uint16_t)((pm->r.pm1_en & ~em) | (en & em & EN_MASK));
    dm_set_wakeup_enabled(pm->dm, FERRY_DM_WAKE_RTC, pm->r.pm1_en & STS_RTC);
    pm_update_sci(pm);
    tmr_arm(pm);
}

static uint64_t cnt_read(void *opaque, uint64_t off, unsigned size)
{
    struct acpi_pm *pm = opaque;

    return pair_read(pm->r.pm1_cnt, 0, off, size);
}

static void cnt_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct acpi_pm *pm = opaque;
    uint16_t mask = (uint16_t)((size >= 2 ? 0xffff : 0xff) << (8 * off));
    uint16_t v = (uint16_t)((pm->r.pm1_cnt & ~mask) | ((val << (8 * off)) & mask));
    unsigned typ = CNT_SLP_TYP(v);

    /* SLP_EN and GBL_RLS are write-only; SCI_EN stays set (no SMM to hand over). */
    pm->r.pm1_cnt = (uint16_t)((v & ~(CNT_SLP_EN | 0x0004)) | CNT_SCI_EN);
    pm_update_sci(pm);
    if (!(v & CNT_SLP_EN))
        return;
    if (pm->s5_mask & (1u << typ)) {
        pm->sleeps++;
        dm_dev_guest_log_at(pm->dev, FERRY_LOG_INFO, "S5: the guest powers itself off");
        dm_request_shutdown(pm->dm, IOREQ_SHUTDOWN_POWEROFF, 0);
        return;
    }
    if (pm->s3_mask & (1u << typ)) {
        int rc;

        dm_dev_guest_log_at(pm->dev, FERRY_LOG_INFO, "S3: the guest suspends to RAM");
        rc = dm_request_suspend(pm->dm);
        if (rc == 0)
            pm->suspends++;
        else
            dm_dev_guest_log(pm->dev, "S3 not possible: %s; the guest runs on", strerror(-rc));
        return;
    }
    dm_dev_guest_log(pm->dev, "sleep with SLP_TYP=%u not supported (S5 mask 0x%02x, S3 mask "
                     "0x%02x): ignored", typ, pm->s5_mask, pm->s3_mask);
}

static uint64_t tmr_read(void *opaque, uint64_t off, unsigned size)
{
    struct acpi_pm *pm = opaque;
    uint32_t t = (uint32_t)tmr_ticks(pm);

    return t >> (8 * off);
}

static uint64_t gpe_read(void *opaque, uint64_t off, unsigned size)
{
    struct acpi_pm *pm = opaque;

    return pair_read(pm->r.gpe_sts, pm->r.gpe_en, off, size);
}

static void gpe_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct acpi_pm *pm = opaque;
    uint16_t w1c, sm, en, em;

    if (off + size > 4)
        return;
    pair_write(off, size, val, &w1c, &sm, &en, &em);
    pm->r.gpe_sts &= ~w1c;
    pm->r.gpe_en = (uint16_t)((pm->r.gpe_en & ~em) | (en & em));
    pm_update_sci(pm);
}

static const struct ferry_dm_region_ops evt_ops = { .read = evt_read, .write = evt_write,
                                                    .max_size = 4 };
static const struct ferry_dm_region_ops cnt_ops = { .read = cnt_read, .write = cnt_write,
                                                    .max_size = 2 };
static const struct ferry_dm_region_ops tmr_ops = { .read = tmr_read, .max_size = 4 };
static const struct ferry_dm_region_ops gpe_ops = { .read = gpe_read, .write = gpe_write,
                                                    .max_size = 4 };

static void pm_reset(void *state)
{
    struct acpi_pm *pm = state;

    memset(&pm->r, 0, sizeof(pm->r));
    pm->r.pm1_cnt = CNT_SCI_EN;
    pm->r.tmr_base_ns = dm_clock_ns(pm->dm);
    dm_set_wakeup_enabled(pm->dm, FERRY_DM_WAKE_RTC, false);
    pm_update_sci(pm);
    tmr_arm(pm);
}

/* After the reset of a wake-up: WAK_STS and what woke the guest (QEMU's choice for OTHER). */
static void pm_wakeup(void *state, enum ferry_dm_wake_reason reason)
{
    struct acpi_pm *pm = state;

    pm->wakes++;
    pm->r.pm1_sts |= STS_WAK | (reason == FERRY_DM_WAKE_RTC ? STS_RTC : STS_PWRBTN);
    pm_update_sci(pm);
}

static void pm_powerdown(void *state)
{
    struct acpi_pm *pm = state;

    pm->r.pm1_sts |= STS_PWRBTN;
    pm_update_sci(pm);
}

static int pm_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts, void **state)
{
    static const char *const known[] = { "sci", "s5-slp-typ", "s3-slp-typ", NULL };
    const char *s3opt = dm_opts_get(opts, "s3-slp-typ");
    struct event_base *base = dm_event_base(dm_device_dm(dev));
    const char *bad = NULL;
    struct acpi_pm *pm;
    uint64_t sci, s5, s3 = ACPI_SLP_TYP_S3;
    int rc;

    if (dm_opts_check(opts, known, &bad) < 0 ||
        dm_opts_get_u64(opts, "sci", 9, 1023, &sci) < 0 ||
        dm_opts_get_u64(opts, "s5-slp-typ", 8, 7, &s5) < 0 ||     /* 8: not given */
        (s3opt && strcmp(s3opt, "none") != 0 &&
         dm_opts_get_u64(opts, "s3-slp-typ", ACPI_SLP_TYP_S3, 7, &s3) < 0)) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "bad option%s%s (sci=N, s5-slp-typ=0..7, "
                   "s3-slp-typ=0..7|none)", bad ? " " : "", bad ? bad : "");
        return -EINVAL;
    }
    if (s3opt && !strcmp(s3opt, "none"))
        s3 = 8;
    if (s3 == (s5 == 8 ? ACPI_SLP_TYP_S5 : s5)) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "s3-slp-typ=%u is the S5 value too",
                   (unsigned)s3);
        return -EINVAL;
    }
    pm = calloc(1, sizeof(*pm));
    if (!pm)
        return -ENOMEM;
    pm->dev = dev;
    pm->dm = dm_device_dm(dev);
    pm->s5_mask = s5 == 8 ? ACPI_S5_DEFAULT : (uint8_t)(1u << s5);
    pm->s3_mask = s3 == 8 ? 0 : (uint8_t)(1u << s3);
    rc = dm_irq_add(dev, (uint32_t)sci, FERRY_DM_IRQ_LEVEL, &pm->sci);
    if (rc < 0)
        goto err;
    rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, PM1_EVT_BASE, 4, &evt_ops, pm, 0, NULL);
    if (rc < 0)
        goto err;
    rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, PM1_CNT_BASE, 2, &cnt_ops, pm, 0, NULL);
    if (rc < 0)
        goto err;
    rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, PM_TMR_BASE, 4, &tmr_ops, pm, 0, NULL);
    if (rc < 0)
        goto err;
    rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, GPE0_BASE, 4, &gpe_ops, pm, 0, NULL);
    if (rc < 0)
        goto err;
    if (base) {
        pm->tmr_ev = evtimer_new(base, tmr_cb, pm);
        if (!pm->tmr_ev) {
            rc = -ENOMEM;
            goto err;
        }
    }
    *state = pm;
    return 0;
err:
    /* Regions and the irq already added are removed with the device. */
    free(pm);
    return rc;
}

static void pm_exit(void *state)
{
    struct acpi_pm *pm = state;

    if (pm->tmr_ev)
        event_free(pm->tmr_ev);
    free(pm);
}

static int pm_save(void *state, GByteArray *out)
{
    struct acpi_pm *pm = state;
    uint8_t version = PM_SAVE_VERSION;
    struct pm_regs r = pm->r;

    /* The timer travels as its current count, not as a host clock value. */
    r.tmr_base_ns = tmr_ticks(pm);
    g_byte_array_append(out, &version, 1);
    g_byte_array_append(out, (const guint8 *)&r, sizeof(r));
    return 0;
}

static int pm_restore(void *state, const uint8_t *buf, size_t len)
{
    struct acpi_pm *pm = state;
    struct pm_regs r;
    uint64_t ns;

    if (len != 1 + sizeof(r) || buf[0] != PM_SAVE_VERSION)
        return -EINVAL;
    memcpy(&r, buf + 1, sizeof(r));
    ns = (uint64_t)((unsigned __int128)r.tmr_base_ns * 1000000000u / PM_TMR_HZ);
    r.tmr_base_ns = dm_clock_ns(pm->dm) - ns;
    r.pm1_en &= EN_MASK;
    r.pm1_cnt |= CNT_SCI_EN;
    pm->r = r;
    dm_set_wakeup_enabled(pm->dm, FERRY_DM_WAKE_RTC, r.pm1_en & STS_RTC);
    pm_update_sci(pm);
    tmr_arm(pm);
    return 0;
}

static void pm_query(void *state, json_t *b)
{
    struct acpi_pm *pm = state;

    json_object_set_new(b, "pm1-sts", json_integer(pm->r.pm1_sts));
    json_object_set_new(b, "pm1-en", json_integer(pm->r.pm1_en));
    json_object_set_new(b, "pm1-cnt", json_integer(pm->r.pm1_cnt));
    json_object_set_new(b, "s5-requests", json_integer(pm->sleeps));
    json_object_set_new(b, "s3-suspends", json_integer(pm->suspends));
    json_object_set_new(b, "s3-wakes", json_integer(pm->wakes));
}

FERRY_SYSCALL_LIST_NONE(acpi_pm_syscalls, "acpi-pm",
    "registers in memory, the PM timer from clock_gettime, the SCI via the hypervisor");

const struct ferry_dm_device_type acpi_pm_device = {
    .name = "acpi-pm",
    .desc = "ACPI PM1a/PM timer/GPE0 block at 0xb000/0xafe0, SCI on sci=9; S5 = SLP_TYP 0, "
            "S3 = SLP_TYP 1",
    .syscalls = &acpi_pm_syscalls,
    .init = pm_init,
    .exit = pm_exit,
    .reset = pm_reset,
    .powerdown = pm_powerdown,
    .wakeup = pm_wakeup,
    .save = pm_save,
    .restore = pm_restore,
    .query = pm_query,
};
FERRY_DM_DEVICE_TYPE(acpi_pm_device)
