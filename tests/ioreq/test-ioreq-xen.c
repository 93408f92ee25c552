// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Ferry's ioreq ABI against Xen's own public header (libxen-dev).  Xen's
 * header is compiled in a separate namespace via a macro prefix so both
 * definitions can live in one file.  Without the header: SKIP (77).
 */
#include <check.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioreq/ioreq-abi.h"
#include "tests/check-main.h"

#if __has_include(<xen/hvm/ioreq.h>)
#define HAVE_XEN_IOREQ 1
/* Rename Xen's types so they do not collide with Ferry's. */
#define ioreq xen_ioreq
#define ioreq_t xen_ioreq_t
#define shared_iopage xen_shared_iopage
#define shared_iopage_t xen_shared_iopage_t
#define buf_ioreq xen_buf_ioreq
#define buf_ioreq_t xen_buf_ioreq_t
#define buffered_iopage xen_buffered_iopage
#define buffered_iopage_t xen_buffered_iopage_t
#define bufioreq_pointers xen_bufioreq_pointers
#define __XEN__ 1   /* expose the pointer union as the hypervisor sees it */
#undef IOREQ_READ
#undef IOREQ_WRITE
#undef STATE_IOREQ_NONE
#undef STATE_IOREQ_READY
#undef STATE_IOREQ_INPROCESS
#undef STATE_IORESP_READY
#undef IOREQ_TYPE_PIO
#undef IOREQ_TYPE_COPY
#undef IOREQ_TYPE_PCI_CONFIG
#undef IOREQ_TYPE_TIMEOFFSET
#undef IOREQ_TYPE_INVALIDATE
#undef IOREQ_BUFFER_SLOT_NUM
#include <xen/hvm/ioreq.h>
#undef __XEN__
#undef ioreq
#undef ioreq_t
#undef shared_iopage
#undef shared_iopage_t
#undef buf_ioreq
#undef buf_ioreq_t
#undef buffered_iopage
#undef buffered_iopage_t
#undef bufioreq_pointers
#else
#define HAVE_XEN_IOREQ 0
#endif


#if HAVE_XEN_IOREQ
/* Bit-fields have no offsetof: find each bit by setting it through one struct. */
#define SAME_BITFIELD(field, value)                                      \
    do {                                                                 \
        struct ioreq f = { 0 };                                          \
        struct xen_ioreq x = { 0 };                                      \
        f.field = value;                                                 \
        x.field = value;                                                 \
        ck_assert_msg(memcmp(&f, &x, sizeof(f)) == 0, "bit-field " #field); \
    } while (0)

START_TEST(test_against_xen)
{
    ck_assert_uint_eq(sizeof(struct ioreq), sizeof(struct xen_ioreq));
    ck_assert_uint_eq(offsetof(struct ioreq, addr), offsetof(struct xen_ioreq, addr));
    ck_assert_uint_eq(offsetof(struct ioreq, data), offsetof(struct xen_ioreq, data));
    ck_assert_uint_eq(offsetof(struct ioreq, count), offsetof(struct xen_ioreq, count));
    ck_assert_uint_eq(offsetof(struct ioreq, size), offsetof(struct xen_ioreq, size));
    ck_assert_uint_eq(offsetof(struct ioreq, vp_eport), offsetof(struct xen_ioreq, vp_eport));
    ck_assert_uint_eq(offsetof(struct ioreq, type), offsetof(struct xen_ioreq, type));
    SAME_BITFIELD(state, 0xf);
    SAME_BITFIELD(data_is_ptr, 1);
    SAME_BITFIELD(dir, 1);
    SAME_BITFIELD(df, 1);

    ck_assert_uint_eq(sizeof(struct buf_ioreq), sizeof(struct xen_buf_ioreq));
    {
        struct buf_ioreq f = { 0 };
        struct xen_buf_ioreq x = { 0 };
        f.type = x.type = 1;
        f.dir = x.dir = 1;
        f.size = x.size = 3;
        f.addr = x.addr = 0xabcde;
        f.data = x.data = 0x12345678;
        ck_assert(memcmp(&f, &x, sizeof(f)) == 0);
    }
    ck_assert_uint_eq(sizeof(struct buffered_iopage), sizeof(struct xen_buffered_iopage));
    ck_assert_uint_eq(offsetof(struct buffered_iopage, buf_ioreq),
                      offsetof(struct xen_buffered_iopage, xen_buf_ioreq)); /* renamed by the macro above */
    ck_assert_uint_eq(offsetof(struct buffered_iopage, ptrs.write_pointer),
                      offsetof(struct xen_buffered_iopage, ptrs.write_pointer));
    ck_assert_uint_eq(IOREQ_BUFFER_SLOT_NUM, 511);
}
END_TEST
#endif

int main(void)
{
#if HAVE_XEN_IOREQ
    Suite *s = suite_create("ioreq-xen");
    suite_add_tcase(s, FERRY_CHECK_TCASE("against-xen", 0, test_against_xen));
    return ferry_check_run(s, CK_FORK_GETENV);
#else
    printf("SKIP: xen/hvm/ioreq.h not found at build time (install libxen-dev, then reconfigure)\n");
    return 77;
#endif
}
