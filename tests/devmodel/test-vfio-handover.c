// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The PCI section of ferry-dm's replace state (companion/dm-vfio.h,
 * companion_vfio_handover_save/restore): a successor takes over every
 * assignment and claim exactly as the predecessor wrote them (a second
 * save gives the same bytes and the same fds, as a second replace does),
 * and refuses a malformed section whole, keeping nothing and taking no fd.
 * The assignments under a real QEMU: tests/pcihost (pci-guest-attach).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "companion/dm-vfio.h"
#include "tests/check-main.h"

static void put32(GByteArray *b, uint32_t x)
{
    uint8_t y[4] = { (uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24) };

    g_byte_array_append(b, y, 4);
}

static void put_str(GByteArray *b, const char *s)
{
    put32(b, (uint32_t)strlen(s));
    g_byte_array_append(b, (const uint8_t *)s, (guint)strlen(s));
}

static void put_dev(GByteArray *b, const char *host, const char *id, const char *bus,
                    const char *addr, uint32_t flags)
{
    put_str(b, host);
    put_str(b, id);
    put_str(b, bus);
    put_str(b, addr);
    put32(b, flags);
}

/* A section: magic "FPCI", version, the devices, the claims. */
static GByteArray *section(uint32_t version)
{
    GByteArray *b = g_byte_array_new();

    put32(b, 0x49435046u);
    put32(b, version);
    return b;
}

/* Two devices (one from the config, one attached at run time with the
 * broker's claim fd) and one claim of ferry-dm's own. */
static GByteArray *good(void)
{
    GByteArray *b = section(1);

    put32(b, 2);
    put_dev(b, "0000:00:02.0", "hostnic", "", "5", 1);
    put_dev(b, "0000:01:00.0", "ferry-pci-01-00-0", "pcie.0", "6.0", 2);
    put32(b, 1);
    put_str(b, "/run/ferry/owners/pci/0000:00:02.0");
    return b;
}

/* An fd we can tell apart: a pipe's read end. */
static int some_fd(void)
{
    int p[2];

    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    close(p[1]);
    return p[0];
}

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

START_TEST(test_round_trip)
{
    struct companion_vfio *v = NULL, *w = NULL;
    g_autoptr(GByteArray) in = good();
    g_autoptr(GByteArray) out = g_byte_array_new();
    g_autoptr(GByteArray) again = g_byte_array_new();
    int fds[2] = { some_fd(), some_fd() }, got[4] = { -1, -1, -1, -1 };
    unsigned n = 0;
    char why[256] = "";

    ck_assert_int_eq(companion_vfio_load(NULL, &v), 0);
    ck_assert_int_eq(companion_vfio_handover_restore(v, in->data, in->len, fds, 2, why,
                                                     sizeof(why)), 0);
    ck_assert_uint_eq(companion_vfio_assigned(v), 2);
    /* what the next replace hands on: the same bytes, the claim fd first, then ferry-dm's */
    ck_assert_int_eq(companion_vfio_handover_save(v, out, got, 4, &n, why, sizeof(why)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(got[0], fds[0]);
    ck_assert_int_eq(got[1], fds[1]);
    ck_assert_uint_eq(out->len, in->len);
    ck_assert(memcmp(out->data, in->data, in->len) == 0);
    /* no room for the fds: refused, naming it */
    ck_assert_int_eq(companion_vfio_handover_save(v, again, got, 1, &n, why, sizeof(why)),
                     -E2BIG);
    ck_assert_msg(strstr(why, "more PCI ownership claims"), "%s", why);
    /* a second successor takes it as the first did (the fds are passed copies) */
    int dup0 = dup(fds[0]), dup1 = dup(fds[1]);
    ck_assert_int_eq(companion_vfio_load(NULL, &w), 0);
    ck_assert_int_eq(companion_vfio_handover_restore(w, out->data, out->len,
                                                     (int[]){ dup0, dup1 }, 2, why,
                                                     sizeof(why)), 0);
    ck_assert_uint_eq(companion_vfio_assigned(w), 2);
    /* a successor that has assignments already refuses */
    ck_assert_int_eq(companion_vfio_handover_restore(w, out->data, out->len, fds, 2, why,
                                                     sizeof(why)), -EBUSY);
    companion_vfio_free(w);
    ck_assert(!fd_open(dup0) && !fd_open(dup1));
    companion_vfio_free(v);
    ck_assert(!fd_open(fds[0]) && !fd_open(fds[1]));
}
END_TEST

START_TEST(test_nothing)
{
    struct companion_vfio *v = NULL;
    g_autoptr(GByteArray) out = g_byte_array_new();
    int fds[1] = { -1 };
    unsigned n = 7;
    char why[256] = "";

    ck_assert_int_eq(companion_vfio_load(NULL, &v), 0);
    /* nothing assigned, no claim: no section (an older successor accepts the state) */
    ck_assert_int_eq(companion_vfio_handover_save(v, out, fds, 1, &n, why, sizeof(why)), 0);
    ck_assert_uint_eq(out->len, 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(companion_vfio_handover_restore(v, NULL, 0, NULL, 0, why, sizeof(why)), 0);
    ck_assert_uint_eq(companion_vfio_assigned(v), 0);
    int fd = some_fd();
    ck_assert_int_eq(companion_vfio_handover_restore(v, NULL, 0, &fd, 1, why, sizeof(why)),
                     -EBADMSG);
    close(fd);
    companion_vfio_free(v);
}
END_TEST

/* Each malformed section is refused whole: nothing assigned, no fd taken. */
static void refused(GByteArray *b, unsigned nfds, int want, const char *words)
{
    struct companion_vfio *v = NULL;
    int fds[3] = { some_fd(), some_fd(), some_fd() };
    char why[256] = "";

    ck_assert_int_eq(companion_vfio_load(NULL, &v), 0);
    ck_assert_int_eq(companion_vfio_handover_restore(v, b->data, b->len, fds, nfds, why,
                                                     sizeof(why)), want);
    ck_assert_msg(strstr(why, words), "'%s' lacks '%s'", why, words);
    ck_assert_uint_eq(companion_vfio_assigned(v), 0);
    companion_vfio_free(v);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert(fd_open(fds[i]));
        close(fds[i]);
    }
    g_byte_array_unref(b);
}

START_TEST(test_malformed)
{
    GByteArray *b;

    b = good();
    b->data[0] ^= 1;
    refused(b, 2, -EBADMSG, "malformed PCI section");
    refused(section(2), 0, -EPROTONOSUPPORT, "PCI section version 2");
    b = good();
    g_byte_array_set_size(b, b->len - 3);
    refused(b, 2, -EBADMSG, "claim 0 of the PCI section is malformed");
    b = good();
    put32(b, 0);
    refused(b, 2, -EBADMSG, "left over");
    refused(good(), 3, -EBADMSG, "3 fds passed for 2 claims");
    refused(good(), 1, -EBADMSG, "more claims than fds");
    b = section(1);
    put32(b, 1);
    put_dev(b, "0000:00:02.0", "nic", "", "", 2);
    put32(b, 0);
    refused(b, 0, -EBADMSG, "0000:00:02.0's claim fd was not passed");
    b = section(1);
    put32(b, 2);
    put_dev(b, "0000:00:02.0", "nic", "", "", 0);
    put_dev(b, "0000:00:02.0", "nic2", "", "", 0);
    put32(b, 0);
    refused(b, 0, -EBADMSG, "0000:00:02.0 (nic2) is in the PCI section twice");
    /* a form the parser takes but ferry-dm never writes (it would save back other bytes) */
    b = section(1);
    put32(b, 1);
    put_dev(b, "00:02.0", "nic", "", "", 0);
    put32(b, 0);
    refused(b, 0, -EBADMSG, "names host device 00:02.0, not as ferry-dm writes it");
    b = section(1);
    put32(b, 1);
    put_dev(b, "0000:0A:00.0", "nic", "", "", 0);
    put32(b, 0);
    refused(b, 0, -EBADMSG, "not as ferry-dm writes it (0000:0a:00.0)");
    b = section(1);
    put32(b, 1);
    put_dev(b, "00:2.0", "nic", "", "", 0);
    put32(b, 0);
    refused(b, 0, -EBADMSG, "assignment 0 of the PCI section is malformed");
    b = section(1);
    put32(b, 1);
    put_dev(b, "0000:00:02.0", "9nic", "", "", 0);
    put32(b, 0);
    refused(b, 0, -EBADMSG, "assignment 0");
    b = section(1);
    put32(b, 1);
    put_dev(b, "0000:00:02.0", "nic", "", "", 4);
    put32(b, 0);
    refused(b, 0, -EBADMSG, "assignment 0");
    b = section(1);
    put32(b, 65);
    refused(b, 0, -EBADMSG, "65 assignments, at most 64");
}
END_TEST

static TCase *handover_tcase(void)
{
    return FERRY_CHECK_TCASE("handover", 30, test_round_trip, test_nothing, test_malformed);
}

FERRY_CHECK_MAIN("vfio-handover", handover_tcase);
