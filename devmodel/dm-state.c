// SPDX-License-Identifier: GPL-2.0-or-later
/* The handover stream (dm-state.h): written by dm_state_save, checked whole before use. */
#include "devmodel/dm-state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "devmodel/dm-handover.h"
#include "devmodel/dm-internal.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "0.1.0"
#endif

uint32_t dm_state_crc32(const uint8_t *buf, size_t len)
{
    static uint32_t table[256];
    static gsize ready;

    if (g_once_init_enter(&ready)) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        g_once_init_leave(&ready, 1);
    }
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++)
        crc = table[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

static void put16(GByteArray *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    g_byte_array_append(b, x, 2);
}

static void put32(GByteArray *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    g_byte_array_append(b, x, 4);
}

static void put64(GByteArray *b, uint64_t v)
{
    put32(b, (uint32_t)v);
    put32(b, (uint32_t)(v >> 32));
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static void section(GByteArray *b, uint16_t type, uint16_t flags, const void *data, uint32_t len)
{
    put16(b, type);
    put16(b, flags);
    put32(b, len);
    g_byte_array_append(b, data, len);
}

int dm_state_save(struct ferry_dm *dm, const char *guest, const uint32_t *fd_roles,
                  unsigned nr_fds, GByteArray *out)
{
    return dm_state_save_full(dm, guest, fd_roles, nr_fds, NULL, NULL, out);
}

int dm_state_save_full(struct ferry_dm *dm, const char *guest, const uint32_t *fd_roles,
                       unsigned nr_fds, const GByteArray *companion, const GByteArray *pci,
                       GByteArray *out)
{
    g_autoptr(GByteArray) devs = g_byte_array_new();
    g_autoptr(GByteArray) b = g_byte_array_new();
    size_t glen = strlen(guest);
    int rc;

    if (nr_fds > DM_STATE_FDS_MAX || glen == 0 || glen >= sizeof(((struct dm_state_view *)0)->guest))
        return -EINVAL;
    rc = dm_save(dm, devs);
    if (rc < 0)
        return rc;
    put32(b, DM_STATE_MAGIC);
    put16(b, DM_STATE_VERSION);
    put16(b, DM_STATE_HEADER_SIZE);
    put32(b, 0);
    bool with_pci = pci && pci->len;

    put32(b, 5 + (companion != NULL) + with_pci);
    put64(b, 0);        /* payload length, patched below */
    section(b, DM_STATE_SEC_GUEST, 0, guest, (uint32_t)glen);
    section(b, DM_STATE_SEC_DEVICES, 0, devs->data, devs->len);
    {
        g_autoptr(GByteArray) f = g_byte_array_new();
        for (unsigned i = 0; i < nr_fds; i++)
            put32(f, fd_roles[i]);
        section(b, DM_STATE_SEC_FDS, 0, f->data, f->len);
    }
    {
        g_autoptr(GByteArray) q = g_byte_array_new();
        dm_handover_save_irqs(dm, q);
        section(b, DM_STATE_SEC_IRQS, 0, q->data, q->len);
    }
    section(b, DM_STATE_SEC_SOURCE, DM_STATE_SEC_OPTIONAL, "ferry-dm " FERRY_VERSION,
            (uint32_t)strlen("ferry-dm " FERRY_VERSION));
    if (companion)
        section(b, DM_STATE_SEC_COMPANION, 0, companion->data, companion->len);
    if (with_pci)
        section(b, DM_STATE_SEC_PCI, 0, pci->data, pci->len);
    uint64_t payload = b->len - DM_STATE_HEADER_SIZE;
    for (int i = 0; i < 8; i++)
        b->data[16 + i] = (uint8_t)(payload >> (8 * i));
    put32(b, dm_state_crc32(b->data, b->len));
    if (b->len > DM_STATE_MAX)
        return -E2BIG;
    g_byte_array_append(out, b->data, b->len);
    return 0;
}

FERRY_PRINTF(3, 4) static int fail(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (why && n)
        vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return 0;
}

int dm_state_parse(const uint8_t *buf, size_t len, struct dm_state_view *v, char *why,
                   size_t why_len)
{
    bool seen[DM_STATE_SEC_PCI + 1] = { false };

    memset(v, 0, sizeof(*v));
    if (why && why_len)
        why[0] = '\0';
    if (len < DM_STATE_HEADER_SIZE + 4)
        return fail(why, why_len, "truncated: %zu bytes, fewer than a header and a checksum",
                    len) - EBADMSG;
    if (get32(buf) != DM_STATE_MAGIC)
        return fail(why, why_len, "not a ferry-dm state (magic 0x%08x)", get32(buf)) - EBADMSG;
    if (get16(buf + 4) != DM_STATE_VERSION)
        return fail(why, why_len, "state version %u, this ferry-dm reads version %u",
                    get16(buf + 4), DM_STATE_VERSION) - EPROTONOSUPPORT;
    if (get16(buf + 6) != DM_STATE_HEADER_SIZE || get32(buf + 8) != 0)
        return fail(why, why_len, "header size %u or flags 0x%x unknown to version %u",
                    get16(buf + 6), get32(buf + 8), DM_STATE_VERSION) - EBADMSG;
    if (len > DM_STATE_MAX)
        return fail(why, why_len, "%zu bytes, more than the %u a state may have", len,
                    DM_STATE_MAX) - EBADMSG;
    uint32_t nsec = get32(buf + 12);
    uint64_t payload = get64(buf + 16);
    if (payload != len - DM_STATE_HEADER_SIZE - 4)
        return fail(why, why_len, "truncated or padded: header says %llu payload bytes, "
                    "%zu arrived", (unsigned long long)payload,
                    len - DM_STATE_HEADER_SIZE - 4) - EBADMSG;
    uint32_t crc = dm_state_crc32(buf, len - 4);
    if (crc != get32(buf + len - 4))
        return fail(why, why_len, "checksum 0x%08x, the data gives 0x%08x: corrupt",
                    get32(buf + len - 4), crc) - EBADMSG;
    if (nsec > DM_STATE_SECTIONS_MAX)
        return fail(why, why_len, "%u sections, at most %u", nsec, DM_STATE_SECTIONS_MAX) -
               EBADMSG;

    size_t pos = DM_STATE_HEADER_SIZE, end = len - 4;
    for (uint32_t i = 0; i < nsec; i++) {
        if (end - pos < 8)
            return fail(why, why_len, "section %u: truncated header", i) - EBADMSG;
        uint16_t type = get16(buf + pos), flags = get16(buf + pos + 2);
        uint32_t n = get32(buf + pos + 4);
        pos += 8;
        if (n > end - pos)
            return fail(why, why_len, "section %u (type %u): %u bytes, %zu left", i, type, n,
                        end - pos) - EBADMSG;
        const uint8_t *p = buf + pos;
        pos += n;
        if (flags & ~DM_STATE_SEC_OPTIONAL)
            return fail(why, why_len, "section %u: unknown flags 0x%x", i, flags) - EBADMSG;
        if (type <= DM_STATE_SEC_PCI && type >= 1) {
            if (seen[type])
                return fail(why, why_len, "section type %u twice", type) - EBADMSG;
            seen[type] = true;
        }
        switch (type) {
        case DM_STATE_SEC_GUEST:
            if (n == 0 || n >= sizeof(v->guest) || memchr(p, 0, n))
                return fail(why, why_len, "guest name of %u bytes", n) - EBADMSG;
            memcpy(v->guest, p, n);
            break;
        case DM_STATE_SEC_DEVICES:
            v->devices = p;
            v->devices_len = n;
            break;
        case DM_STATE_SEC_FDS:
            if (n % 4 || n / 4 > DM_STATE_FDS_MAX)
                return fail(why, why_len, "fd table of %u bytes", n) - EBADMSG;
            v->nr_fds = n / 4;
            for (unsigned k = 0; k < v->nr_fds; k++) {
                v->fd_roles[k] = get32(p + 4 * k);
                if (DM_STATE_FD_KIND(v->fd_roles[k]) == 0 ||
                    DM_STATE_FD_KIND(v->fd_roles[k]) >= DM_STATE_FD_ROLE_MAX ||
                    (DM_STATE_FD_KIND(v->fd_roles[k]) < DM_STATE_FD_CHARDEV &&
                     DM_STATE_FD_TAG(v->fd_roles[k])) ||
                    (DM_STATE_FD_KIND(v->fd_roles[k]) == DM_STATE_FD_LOG &&
                     DM_STATE_FD_TAG(v->fd_roles[k])))
                    return fail(why, why_len, "fd %u has unknown role %u", k,
                                v->fd_roles[k]) - EINVAL;
            }
            break;
        case DM_STATE_SEC_COMPANION:
            v->companion = p;
            v->companion_len = n;
            break;
        case DM_STATE_SEC_PCI:
            v->pci = p;
            v->pci_len = n;
            break;
        case DM_STATE_SEC_SOURCE: {
            size_t m = n < sizeof(v->source) - 1 ? n : sizeof(v->source) - 1;
            memcpy(v->source, p, m);
            for (size_t k = 0; k < m; k++)
                if (v->source[k] < 0x20 || v->source[k] > 0x7e)
                    v->source[k] = '?';
            break;
        }
        case DM_STATE_SEC_IRQS:
            if (n < 8 || (n - 8) % 20 || get32(p + 4) != (n - 8) / 20)
                return fail(why, why_len, "irqs section of %u bytes", n) - EBADMSG;
            v->irqs = p;
            v->irqs_len = n;
            break;
        default:
            if (!(flags & DM_STATE_SEC_OPTIONAL))
                return fail(why, why_len, "section type %u is unknown and not optional", type) -
                       EBADMSG;
        }
    }
    if (pos != end)
        return fail(why, why_len, "%zu bytes after the last section", end - pos) - EBADMSG;
    if (!seen[DM_STATE_SEC_GUEST] || !seen[DM_STATE_SEC_DEVICES] || !seen[DM_STATE_SEC_FDS])
        return fail(why, why_len, "a guest, devices or fds section is missing") - EBADMSG;
    return 0;
}

/* Every record's device exists here, and every device here with state has one. */
static int check_devices(struct ferry_dm *dm, const uint8_t *buf, size_t n, char *why,
                         size_t why_len)
{
    g_autofree bool *have = g_new0(bool, dm->devices->len + 1);
    size_t pos = 0;

    while (pos < n) {
        char id[FERRY_DM_ID_MAX];
        uint8_t idlen = buf[pos++];
        if (idlen == 0 || idlen >= FERRY_DM_ID_MAX || n - pos < (size_t)idlen + 4)
            return fail(why, why_len, "device record at byte %zu is truncated", pos - 1) -
                   EBADMSG;
        memcpy(id, buf + pos, idlen);
        id[idlen] = '\0';
        pos += idlen;
        uint32_t len = get32(buf + pos);
        pos += 4;
        if (len > n - pos)
            return fail(why, why_len, "device '%s': %u bytes of state, %zu left", id, len,
                        n - pos) - EBADMSG;
        pos += len;
        guint k;
        for (k = 0; k < dm->devices->len; k++) {
            struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, k);
            if (!strcmp(dev->id, id))
                break;
        }
        if (k == dm->devices->len)
            return fail(why, why_len, "the state has device '%s', this ferry-dm has none "
                        "(configs differ)", id) - ENOENT;
        if (have[k])
            return fail(why, why_len, "device '%s' twice", id) - EBADMSG;
        have[k] = true;
    }
    for (guint k = 0; k < dm->devices->len; k++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, k);
        if (dev->type->save && !have[k])
            return fail(why, why_len, "device '%s' has no state in the stream (configs differ)",
                        dev->id) - ESRCH;
    }
    return 0;
}

int dm_state_load(struct ferry_dm *dm, const char *guest, const uint8_t *buf, size_t len,
                  struct dm_state_view *v, char *why, size_t why_len)
{
    int rc = dm_state_parse(buf, len, v, why, why_len);

    if (rc)
        return rc;
    if (strcmp(v->guest, guest))
        return fail(why, why_len, "the state is guest '%s''s, this ferry-dm serves '%s'",
                    v->guest, guest) - EINVAL;
    rc = check_devices(dm, v->devices, v->devices_len, why, why_len);
    if (rc)
        return rc;
    /* The MSI routes first: a device's restore may find a message to send. */
    if (v->irqs) {
        rc = dm_handover_load_irqs(dm, v->irqs, v->irqs_len, why, why_len);
        if (rc)
            return rc;
    }
    dm->taking_over = true;
    rc = dm_restore(dm, v->devices, v->devices_len);
    dm->taking_over = false;
    if (rc)
        fail(why, why_len, "a device refused its state: %s (see the log)", strerror(-rc));
    return rc;
}
