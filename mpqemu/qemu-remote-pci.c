/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU remote engine, the PCI function proxy (see qemu-remote.h and
 * qemu-remote-internal.h): the function learnt from the remote, virtual BARs
 * and where the remote has them, the guest's config reads and writes
 * filtered (MSI and MSI-X hidden by the capability view, the ROM BAR read as
 * 0), the guest's config replayed after reset or restart, and BAR accesses
 * checked, translated and forwarded.  The process is qemu-remote-process.c.
 */
#include <errno.h>
#include <string.h>

#include "mpqemu/qemu-remote-internal.h"

#define QR_CAPS_MAX         48          /* a 256-byte space holds at most 48 */
#define QR_REMOTE_MMIO_BASE 0xc0000000ull
#define QR_REMOTE_IO_BASE   0x1000ull
#define QR_REMOTE_IO_END    0x10000ull
#define QR_REMOTE_MMIO_END  (1ull << 46)

#define PCI_COMMAND         0x04
#define PCI_STATUS          0x06
#define PCI_HEADER_TYPE     0x0e
#define PCI_BAR0            0x10
#define PCI_ROM             0x30
#define PCI_CAP_PTR         0x34
#define PCI_INT_PIN         0x3d
#define CMD_IO              0x1
#define CMD_MEM             0x2
#define STATUS_CAP_LIST     0x10

/* ------------------------------------------------------------------ */
/* Capability view                                                     */

static unsigned msi_cap_len(const uint8_t *cfg, unsigned p)
{
    uint16_t ctrl = (uint16_t)(cfg[(p + 2) & 0xff] | cfg[(p + 3) & 0xff] << 8);
    unsigned len = 10;

    if (ctrl & 0x80)
        len += 4;
    if (ctrl & 0x100)
        len += 10;
    return (len + 3) & ~3u;
}

void mpqemu_remote_capview_build(const uint8_t cfg[256], struct mpqemu_remote_capview *v)
{
    uint8_t keep[QR_CAPS_MAX];
    unsigned nkeep = 0, seen = 0;
    bool visited[256] = { false };
    unsigned p;

    memset(v->mask, 0xff, sizeof(v->mask));
    for (unsigned i = 0; i < 256; i++)
        v->value[i] = -1;
    memset(v->drop, 0, sizeof(v->drop));
    v->hidden = 0;
    v->express = false;

    if (!(cfg[PCI_STATUS] & STATUS_CAP_LIST))
        return;
    p = cfg[PCI_CAP_PTR] & 0xfc;
    while (p >= 0x40 && !visited[p] && seen < QR_CAPS_MAX) {
        uint8_t id = cfg[p];
        unsigned next = cfg[p + 1] & 0xfc;

        visited[p] = true;
        seen++;
        if (id == 0x10)
            v->express = true;
        if (id == 0x05 || id == 0x11) {
            unsigned len = id == 0x05 ? msi_cap_len(cfg, p) : 12;

            for (unsigned i = p; i < p + len && i < 256; i++) {
                v->mask[i] = 0;
                v->drop[i] = true;
            }
            v->hidden++;
        } else {
            keep[nkeep++] = (uint8_t)p;
        }
        p = next;
    }
    if (!v->hidden)
        return;
    /* Relink the visible capabilities in their original order. */
    v->value[PCI_CAP_PTR] = nkeep ? keep[0] : 0;
    for (unsigned i = 0; i < nkeep; i++)
        v->value[keep[i] + 1] = i + 1 < nkeep ? keep[i + 1] : 0;
    if (!nkeep)
        v->mask[PCI_STATUS] = (uint8_t)~STATUS_CAP_LIST;
}

static int raw_cfg_read(struct ferry_qemu_remote *r, unsigned off, unsigned len,
                        uint32_t *val, unsigned timeout)
{
    struct mpqemu_msg m;
    uint64_t v = 0;
    int rc;

    mpqemu_msg_cfgread(&m, off, (int)len);
    rc = mpqemu_remote_call(r, &m, true, false, &v, timeout);
    *val = (uint32_t)v;
    return rc;
}

static int raw_cfg_write(struct ferry_qemu_remote *r, unsigned off, unsigned len,
                         uint32_t val, unsigned timeout)
{
    struct mpqemu_msg m;

    mpqemu_msg_cfgwrite(&m, off, val, (int)len);
    return mpqemu_remote_call(r, &m, true, false, NULL, timeout);
}

/* ------------------------------------------------------------------ */
/* BARs                                                                */

static uint64_t bar_end(const struct mpqemu_remote_bar *b, uint64_t base)
{
    return base + b->size;
}

/* Choose remote addresses: memory BARs outside every guest RAM region. */
static int place_bars(struct ferry_qemu_remote *r)
{
    uint64_t io_cur = QR_REMOTE_IO_BASE;

    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
        struct mpqemu_remote_bar *b = &r->bars[i];
        uint64_t limit, a;
        bool moved = true;

        if (!b->present)
            continue;
        if (b->io) {
            a = (io_cur + b->size - 1) & ~(b->size - 1);
            if (bar_end(b, a) > QR_REMOTE_IO_END)
                return -ENOSPC;
            b->remote = a;
            io_cur = bar_end(b, a);
            continue;
        }
        limit = b->is64 ? QR_REMOTE_MMIO_END : (1ull << 32);
        a = (QR_REMOTE_MMIO_BASE + b->size - 1) & ~(b->size - 1);
        while (moved) {
            moved = false;
            for (unsigned k = 0; k < r->nram; k++) {
                if (mpqemu_remote_overlaps(a, b->size, r->ram[k].gpa, r->ram[k].size)) {
                    a = (r->ram[k].gpa + r->ram[k].size + b->size - 1) & ~(b->size - 1);
                    moved = true;
                }
            }
            for (unsigned k = 0; k < i; k++) {
                const struct mpqemu_remote_bar *o = &r->bars[k];

                if (o->present && !o->io && mpqemu_remote_overlaps(a, b->size, o->remote, o->size)) {
                    a = (o->remote + o->size + b->size - 1) & ~(b->size - 1);
                    moved = true;
                }
            }
            if (a == 0 || bar_end(b, a) > limit || bar_end(b, a) < a)
                return -ENOSPC;
        }
        b->remote = a;
    }
    return 0;
}

static int program_remote_bars(struct ferry_qemu_remote *r, unsigned timeout)
{
    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
        const struct mpqemu_remote_bar *b = &r->bars[i];
        int rc;

        if (!b->present)
            continue;
        rc = raw_cfg_write(r, PCI_BAR0 + 4 * i, 4, (uint32_t)b->remote | b->flags, timeout);
        if (!rc && b->is64)
            rc = raw_cfg_write(r, PCI_BAR0 + 4 * (i + 1), 4, (uint32_t)(b->remote >> 32),
                               timeout);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int probe_bars(struct ferry_qemu_remote *r, struct mpqemu_remote_bar *bars, unsigned timeout)
{
    memset(bars, 0, sizeof(*bars) * QEMU_REMOTE_BARS);
    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
        unsigned off = PCI_BAR0 + 4 * i;
        uint32_t orig = 0, mask = 0, hi_orig = 0, hi_mask = 0;
        uint64_t m64;
        int rc;

        rc = raw_cfg_read(r, off, 4, &orig, timeout);
        if (!rc)
            rc = raw_cfg_write(r, off, 4, 0xffffffff, timeout);
        if (!rc)
            rc = raw_cfg_read(r, off, 4, &mask, timeout);
        if (!rc)
            rc = raw_cfg_write(r, off, 4, orig, timeout);
        if (rc < 0)
            return rc;
        if (mask == 0)
            continue;
        bars[i].present = true;
        if (mask & 1) {
            bars[i].io = true;
            bars[i].flags = 1;
            m64 = 0xffff0000u | (mask & ~3u);
            bars[i].size = (uint32_t)(~m64 + 1);
        } else {
            bars[i].flags = mask & 0xf;
            if (((mask >> 1) & 3) == 2 && i + 1 < QEMU_REMOTE_BARS) {
                bars[i].is64 = true;
                rc = raw_cfg_read(r, off + 4, 4, &hi_orig, timeout);
                if (!rc)
                    rc = raw_cfg_write(r, off + 4, 4, 0xffffffff, timeout);
                if (!rc)
                    rc = raw_cfg_read(r, off + 4, 4, &hi_mask, timeout);
                if (!rc)
                    rc = raw_cfg_write(r, off + 4, 4, hi_orig, timeout);
                if (rc < 0)
                    return rc;
                m64 = (uint64_t)hi_mask << 32 | (mask & ~0xfu);
                bars[i].size = ~m64 + 1;
                bars[i + 1].hi = true;
                i++;
            } else {
                bars[i].size = (uint32_t)(~(mask & ~0xfu) + 1);
            }
        }
        if (bars[i - (bars[i].hi ? 1 : 0)].size == 0) {
            qlog(r, FERRY_LOG_ERROR, "bar %u: size mask %#x makes no sense", i, mask);
            return -EPROTO;
        }
    }
    return 0;
}

/* Recompute which BARs the guest has enabled and tell the framework. */
static void update_mappings(struct ferry_qemu_remote *r)
{
    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
        struct mpqemu_remote_bar *b = &r->bars[i];
        bool en;
        uint64_t a = b->guest;

        if (!b->present)
            continue;
        en = (r->command & (b->io ? CMD_IO : CMD_MEM)) && a != 0 &&
             bar_end(b, a) > a && (!b->io || bar_end(b, a) <= QR_REMOTE_IO_END);
        if (en == b->mapped && (!en || a == b->mapped_addr))
            continue;
        if (b->mapped) {
            qlog(r, FERRY_LOG_DEBUG, "bar %u unmapped %s addr=%#llx", i, b->io ? "io" : "mem",
                 (unsigned long long)b->mapped_addr);
            if (r->ops && r->ops->bar_map)
                r->ops->bar_map(r->opaque, i, b->io, b->mapped_addr, b->size, false);
            b->mapped = false;
        }
        if (en) {
            b->mapped = true;
            b->mapped_addr = a;
            qlog(r, FERRY_LOG_DEBUG, "bar %u mapped %s addr=%#llx size=%#llx", i,
                 b->io ? "io" : "mem", (unsigned long long)a, (unsigned long long)b->size);
            if (r->ops && r->ops->bar_map)
                r->ops->bar_map(r->opaque, i, b->io, a, b->size, true);
        }
    }
}

static uint32_t bar_reg_read(const struct ferry_qemu_remote *r, unsigned idx)
{
    const struct mpqemu_remote_bar *b = &r->bars[idx];

    if (b->hi) {
        const struct mpqemu_remote_bar *lo = &r->bars[idx - 1];
        return (uint32_t)(lo->guest >> 32);
    }
    if (!b->present)
        return 0;
    return (uint32_t)b->guest | b->flags;
}

static void bar_reg_write(struct ferry_qemu_remote *r, unsigned idx, uint32_t val)
{
    struct mpqemu_remote_bar *b = &r->bars[idx];

    if (b->hi) {
        struct mpqemu_remote_bar *lo = &r->bars[idx - 1];
        uint64_t mask = ~(lo->size - 1);

        lo->guest = ((uint64_t)val << 32 | (uint32_t)lo->guest) & mask;
        return;
    }
    if (!b->present)
        return;
    if (b->io)
        b->guest = (val & ~3u) & (uint32_t)~(b->size - 1) & 0xffff;
    else
        b->guest = ((b->guest & 0xffffffff00000000ull) | (val & ~0xfu)) & ~(b->size - 1);
}

/* ------------------------------------------------------------------ */
/* The function at bring-up                                           */

int mpqemu_remote_learn_function(struct ferry_qemu_remote *r, unsigned t)
{
    uint8_t cfg[256];
    struct mpqemu_remote_bar bars[QEMU_REMOTE_BARS];
    int rc;

    for (unsigned off = 0; off < 256; off += 4) {
        uint32_t v;

        rc = raw_cfg_read(r, off, 4, &v, t);
        if (rc < 0)
            return rc;
        for (unsigned i = 0; i < 4; i++)
            cfg[off + i] = (uint8_t)(v >> (8 * i));
    }
    if (r->identified) {
        uint32_t ids = cfg[0] | cfg[1] << 8 | cfg[2] << 16 | (uint32_t)cfg[3] << 24;

        if (ids != r->ids) {
            qlog(r, FERRY_LOG_ERROR, "restarted function has ids %#x, not %#x", ids, r->ids);
            return -ENODEV;
        }
    } else {
        r->ids = cfg[0] | cfg[1] << 8 | cfg[2] << 16 | (uint32_t)cfg[3] << 24;
        if ((r->ids & 0xffff) == 0xffff || (cfg[PCI_HEADER_TYPE] & 0x7f) != 0) {
            qlog(r, FERRY_LOG_ERROR, "unsupported function ids=%#x header type=%#x",
                 r->ids, cfg[PCI_HEADER_TYPE]);
            return -ENOTSUP;
        }
    }
    mpqemu_remote_capview_build(cfg, &r->view);
    r->cfg_size = r->view.express ? 4096 : 256;
    rc = probe_bars(r, bars, t);
    if (rc < 0)
        return rc;
    if (r->identified) {
        for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
            if (bars[i].present != r->bars[i].present || bars[i].size != r->bars[i].size ||
                bars[i].io != r->bars[i].io) {
                qlog(r, FERRY_LOG_ERROR, "restarted function's bar %u differs", i);
                return -ENODEV;
            }
        }
    } else {
        memcpy(r->bars, bars, sizeof(bars));
        rc = place_bars(r);
        if (rc < 0) {
            qlog(r, FERRY_LOG_ERROR, "no room for the bars in the remote's address space");
            return rc;
        }
        for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
            if (r->bars[i].present)
                qlog(r, FERRY_LOG_INFO, "bar %u %s%s size=%#llx remote=%#llx", i,
                     r->bars[i].io ? "io" : "mem", r->bars[i].is64 ? "64" : "",
                     (unsigned long long)r->bars[i].size,
                     (unsigned long long)r->bars[i].remote);
        }
        if (r->view.hidden)
            qlog(r, FERRY_LOG_INFO, "hiding %u msi/msi-x capabilities", r->view.hidden);
        r->identified = true;
    }
    return 0;
}

int mpqemu_remote_replay_config(struct ferry_qemu_remote *r, unsigned t)
{
    int rc = program_remote_bars(r, t);

    if (rc < 0)
        return rc;
    for (unsigned off = 0x08; off < r->cfg_size; off += 4) {
        uint32_t v;
        bool any = false;

        for (unsigned i = 0; i < 4; i++)
            any |= r->wset[off + i];
        if (!any)
            continue;
        rc = raw_cfg_read(r, off, 4, &v, t);
        if (rc < 0)
            return rc;
        for (unsigned i = 0; i < 4; i++) {
            if (r->wset[off + i]) {
                v &= ~(0xffu << (8 * i));
                v |= (uint32_t)r->wval[off + i] << (8 * i);
            }
        }
        rc = raw_cfg_write(r, off, 4, v, t);
        if (rc < 0)
            return rc;
    }
    if (r->command)
        rc = raw_cfg_write(r, PCI_COMMAND, 2, r->command, t);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Guest accesses                                                      */

static void refused(struct ferry_qemu_remote *r, const char *what, uint64_t addr,
                    unsigned len)
{
    uint32_t supp = 0;

    r->st.refused++;
    if (ferry_ratelimit_ok(&r->rl, &supp))
        qlog(r, FERRY_LOG_DEBUG, "refused %s addr=%#llx len=%u suppressed=%u", what,
             (unsigned long long)addr, len, supp);
}

static bool cfg_access_ok(unsigned off, unsigned len)
{
    return (len == 1 || len == 2 || len == 4) && off < 4096 && (off & (len - 1)) == 0;
}

uint32_t mpqemu_remote_config_read(struct ferry_qemu_remote *r, unsigned off, unsigned len)
{
    uint32_t ones = len == 1 ? 0xff : len == 2 ? 0xffff : 0xffffffffu;
    uint32_t dev = 0, out = 0;
    bool need_remote = false;
    unsigned base = off & ~3u;

    if (!cfg_access_ok(off, len)) {
        refused(r, "config read", off, len);
        return ones;
    }
    if (r->state != QEMU_REMOTE_RUNNING) {
        r->st.while_down++;
        return ones;
    }
    if (off >= r->cfg_size)
        return ones;
    for (unsigned i = off; i < off + len; i++) {
        if (!(i >= PCI_BAR0 && i < PCI_BAR0 + 24) && !(i >= PCI_ROM && i < PCI_ROM + 4) &&
            (i >= 256 || (r->view.value[i] < 0 && r->view.mask[i])))
            need_remote = true;
    }
    if (need_remote) {
        struct mpqemu_msg m;
        uint64_t v;
        /* QEMU refuses addr + 4 > config size whatever len is: read the dword. */
        unsigned roff = off + 4 > r->cfg_size ? base : off;
        unsigned rlen = roff == off ? len : 4;

        mpqemu_msg_cfgread(&m, roff, (int)rlen);
        if (mpqemu_remote_rpc(r, &m, &v) < 0) {
            r->st.while_down++;
            return ones;
        }
        r->st.cfg_reads++;
        dev = (uint32_t)v;
        if (roff != off)
            dev >>= 8 * (off - roff);
    }
    for (unsigned i = 0; i < len; i++) {
        unsigned o = off + i;
        uint8_t b = (uint8_t)(dev >> (8 * i));

        if (o >= PCI_BAR0 && o < PCI_BAR0 + 24)
            b = (uint8_t)(bar_reg_read(r, (o - PCI_BAR0) / 4) >> (8 * (o & 3)));
        else if (o >= PCI_ROM && o < PCI_ROM + 4)
            b = 0;
        else if (o < 256)
            b = r->view.value[o] >= 0 ? (uint8_t)r->view.value[o] : (b & r->view.mask[o]);
        out |= (uint32_t)b << (8 * i);
    }
    return out;
}

void mpqemu_remote_config_write(struct ferry_qemu_remote *r, unsigned off, unsigned len,
                              uint32_t val)
{
    struct mpqemu_msg m;

    if (!cfg_access_ok(off, len)) {
        refused(r, "config write", off, len);
        return;
    }
    if (r->state != QEMU_REMOTE_RUNNING) {
        r->st.while_down++;
        return;
    }
    if (off >= PCI_BAR0 && off < PCI_BAR0 + 24) {
        unsigned idx = (off - PCI_BAR0) / 4;
        uint32_t cur = bar_reg_read(r, idx);

        for (unsigned i = 0; i < len; i++) {
            unsigned sh = 8 * ((off & 3) + i);

            cur = (cur & ~(0xffu << sh)) | ((val >> (8 * i)) & 0xff) << sh;
        }
        bar_reg_write(r, idx, cur);
        update_mappings(r);
        return;
    }
    if ((off >= PCI_ROM && off < PCI_ROM + 4) || off >= r->cfg_size || off + 4 > r->cfg_size ||
        (off < 256 && r->view.drop[off])) {
        refused(r, "config write", off, len);
        return;
    }
    mpqemu_msg_cfgwrite(&m, off, val, (int)len);
    if (mpqemu_remote_rpc(r, &m, NULL) < 0)
        return;
    r->st.cfg_writes++;
    for (unsigned i = 0; i < len; i++) {
        r->wval[off + i] = (uint8_t)(val >> (8 * i));
        r->wset[off + i] = 1;
    }
    if (off <= PCI_COMMAND + 1 && off + len > PCI_COMMAND) {
        for (unsigned i = 0; i < len; i++) {
            unsigned o = off + i;

            if (o == PCI_COMMAND)
                r->command = (uint16_t)((r->command & 0xff00) | ((val >> (8 * i)) & 0xff));
            else if (o == PCI_COMMAND + 1)
                r->command = (uint16_t)((r->command & 0xff) | ((val >> (8 * i)) & 0xff) << 8);
        }
        update_mappings(r);
    }
}

/* Finds the enabled BAR wholly holding [addr, addr + size); translates addr. */
static int bar_lookup(struct ferry_qemu_remote *r, bool io, uint64_t addr, unsigned size,
                      uint64_t *remote)
{
    if ((size != 1 && size != 2 && size != 4 && size != 8) || (addr & (size - 1)) ||
        size < r->access_min || addr + size < addr)
        return -ENXIO;
    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
        const struct mpqemu_remote_bar *b = &r->bars[i];

        if (!b->present || !b->mapped || b->io != io)
            continue;
        if (addr >= b->mapped_addr && addr + size <= b->mapped_addr + b->size) {
            *remote = b->remote + (addr - b->mapped_addr);
            return 0;
        }
    }
    return -ENXIO;
}

/*
 * One guest access to a BAR: a read into *val or a write of *val.  Most
 * devices take at most 4 bytes at once and QEMU ends on an invalid size, so
 * a wider access goes as 4-byte parts.
 */
static int bar_access(struct ferry_qemu_remote *r, bool io, bool write, uint64_t addr,
                      unsigned size, uint64_t *val)
{
    uint64_t ra, v = 0;
    struct mpqemu_msg m;
    int rc;

    if (r->state != QEMU_REMOTE_RUNNING) {
        r->st.while_down++;
        return -ENODEV;
    }
    rc = bar_lookup(r, io, addr, size, &ra);
    if (rc < 0) {
        refused(r, io ? (write ? "io write" : "io read") : (write ? "mmio write" : "mmio read"),
                addr, size);
        return rc;
    }
    for (unsigned done = 0; done < size; done += 4) {
        unsigned n = size < 4 ? size : 4;
        uint64_t mask = n < 4 ? (1ull << (8 * n)) - 1 : 0xffffffffull;
        uint64_t part;

        if (write)
            mpqemu_msg_bar_write(&m, !io, ra + done, (*val >> (8 * done)) & mask, n);
        else
            mpqemu_msg_bar_read(&m, !io, ra + done, n);
        if (mpqemu_remote_rpc(r, &m, write ? NULL : &part) < 0) {
            if (!write)
                r->st.while_down++;
            return -ENODEV;
        }
        if (!write)
            v |= (part & mask) << (8 * done);
    }
    if (write) {
        r->st.bar_writes++;
    } else {
        r->st.bar_reads++;
        *val = v;
    }
    return 0;
}

int mpqemu_remote_bar_read(struct ferry_qemu_remote *r, bool io, uint64_t addr, unsigned size,
                         uint64_t *val)
{
    uint64_t v = 0;
    int rc;

    rc = bar_access(r, io, false, addr, size, &v);
    *val = rc < 0 ? (size >= 8 ? ~0ull : (1ull << (8 * size)) - 1) : v;
    return rc;
}

int mpqemu_remote_bar_write(struct ferry_qemu_remote *r, bool io, uint64_t addr, unsigned size,
                          uint64_t val)
{
    return bar_access(r, io, true, addr, size, &val);
}

int mpqemu_remote_reset(struct ferry_qemu_remote *r)
{
    struct mpqemu_msg m;
    int rc;

    if (r->state != QEMU_REMOTE_RUNNING)
        return -ENODEV;
    mpqemu_msg_device_reset(&m);
    rc = mpqemu_remote_call(r, &m, true, true, NULL, r->reply_timeout_ms);
    if (rc < 0) {
        mpqemu_remote_down(r, "no reply to device reset");
        return rc;
    }
    /*
     * QEMU's DEVICE_RESET resets the device model but not its config
     * header; a function-level reset clears both, so clear the decode
     * enables and forget what the guest wrote.
     */
    rc = raw_cfg_write(r, PCI_COMMAND, 2, 0, r->reply_timeout_ms);
    if (rc < 0) {
        mpqemu_remote_down(r, "cannot clear command after reset");
        return rc;
    }
    memset(r->wset, 0, sizeof(r->wset));
    r->command = 0;
    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++)
        r->bars[i].guest = 0;
    update_mappings(r);
    rc = program_remote_bars(r, r->reply_timeout_ms);
    if (rc < 0)
        mpqemu_remote_down(r, "cannot program bars after reset");
    qlog(r, FERRY_LOG_INFO, "device reset pid=%d", (int)r->pid);
    return rc;
}

int mpqemu_remote_bar_info(const struct ferry_qemu_remote *r, unsigned bar,
                         struct mpqemu_remote_bar_info *info)
{
    const struct mpqemu_remote_bar *b;

    if (bar >= QEMU_REMOTE_BARS)
        return -EINVAL;
    b = &r->bars[bar];
    *info = (struct mpqemu_remote_bar_info){
        .present = b->present, .io = b->io, .is64 = b->is64, .mapped = b->mapped,
        .size = b->size, .guest_addr = b->guest, .remote_addr = b->remote,
    };
    return 0;
}
