// SPDX-License-Identifier: GPL-2.0-or-later
/* The 16550A UART's registers, FIFO, interrupts and back ends. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/devmodel/test-devmodel.h"

#define COM1 0x3f8
#define RBR 0
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

static char *tmp_path(const char *name)
{
    char *dir = g_dir_make_tmp("ferry-dm-test-XXXXXX", NULL);

    ck_assert_ptr_nonnull(dir);
    char *p = g_build_filename(dir, name, NULL);
    g_free(dir);
    return p;
}

static void rm_path(char *p)
{
    char *dir = g_path_get_dirname(p);

    unlink(p);
    rmdir(dir);
    g_free(dir);
    g_free(p);
}

START_TEST(test_uart_reset_state)
{
    struct tb t;

    tb_init(&t, false);
    tb_add(&t, "uart", "com1", "out=null");
    ck_assert_uint_eq(tb_in(&t, COM1 + LSR, 1), 0x60);          /* THRE | TEMT */
    ck_assert_uint_eq(tb_in(&t, COM1 + IIR, 1), 0x01);          /* nothing pending */
    ck_assert_uint_eq(tb_in(&t, COM1 + IER, 1), 0x00);
    ck_assert_uint_eq(tb_in(&t, COM1 + MSR, 1) & 0xb0, 0xb0);   /* CTS DSR DCD */
    tb_out(&t, COM1 + SCR, 1, 0x5a);
    ck_assert_uint_eq(tb_in(&t, COM1 + SCR, 1), 0x5a);
    /* Divisor latch behind DLAB. */
    tb_out(&t, COM1 + LCR, 1, 0x83);
    tb_out(&t, COM1 + 0, 1, 0x01);
    tb_out(&t, COM1 + 1, 1, 0x00);
    ck_assert_uint_eq(tb_in(&t, COM1 + 0, 1), 0x01);
    tb_out(&t, COM1 + LCR, 1, 0x03);
    ck_assert_uint_eq(tb_in(&t, COM1 + IER, 1), 0x00);          /* not the DLM */
    /* LSR/MSR writes are ignored; a wide access is split into bytes. */
    tb_out(&t, COM1 + LSR, 1, 0);
    ck_assert_uint_eq(tb_in(&t, COM1 + LSR, 1), 0x60);
    ck_assert_uint_eq(tb_in(&t, COM1 + 4, 4) >> 8 & 0xff, 0x60);
    /* Ports past the 8 registers are not the UART's. */
    ck_assert_uint_eq(tb_in(&t, COM1 + 8, 1), 0xff);
    tb_fini(&t);
}
END_TEST

START_TEST(test_uart_output_file)
{
    struct tb t;
    char *path = tmp_path("out");
    char *opts = g_strdup_printf("out=file:%s", path);
    char buf[64] = { 0 };

    tb_init(&t, false);
    tb_add(&t, "uart", "com1", opts);
    for (const char *p = "hello, ferry\n"; *p; p++) {
        ck_assert(tb_in(&t, COM1 + LSR, 1) & 0x20);
        tb_out(&t, COM1, 1, (uint8_t)*p);
    }
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), 13);
    close(fd);
    ck_assert_str_eq(buf, "hello, ferry\n");
    /* Writing while DLAB is set programs the divisor, nothing goes out. */
    tb_out(&t, COM1 + LCR, 1, 0x80);
    tb_out(&t, COM1, 1, 'X');
    tb_fini(&t);
    fd = open(path, O_RDONLY);
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 13);
    close(fd);
    g_free(opts);
    rm_path(path);
    /* Output the file system cannot take (/dev/full: ENOSPC) is dropped,
     * counted, and said in the log (rate-limited: a few lines, not one per byte). */
    tb_init(&t, false);
    t.log = g_string_new(NULL);
    tb_add(&t, "uart", "com1", "out=file:/dev/full");
    for (int i = 0; i < 1000; i++)
        tb_out(&t, COM1, 1, 'x');
    ck_assert_msg(strstr(t.log->str, "dropped") && strstr(t.log->str, "/dev/full") &&
                  strstr(t.log->str, "No space left on device"), "log: %s", t.log->str);
    ck_assert_uint_lt(t.log_lines, 20);
    g_string_free(t.log, TRUE);
    t.log = NULL;
    tb_fini(&t);
    /* A back end that cannot open fails the add. */
    tb_init(&t, false);
    ck_assert_int_lt(tb_try_add(&t, "uart", "com1", "out=file:/nonexistent/dir/x"), 0);
    ck_assert_int_eq(tb_try_add(&t, "uart", "com1", "out=carrier-pigeon"), -EINVAL);
    ck_assert_int_eq(tb_try_add(&t, "uart", "com1", "colour=blue"), -EINVAL);
    ck_assert_int_eq(tb_try_add(&t, "uart", "com1", "port=0x10000"), -EINVAL);
    tb_fini(&t);
}
END_TEST

START_TEST(test_uart_thre_interrupt)
{
    struct tb t;

    tb_init(&t, true);
    tb_add(&t, "uart", "com1", "out=null");
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert_int_ge(t.irqfd_fd[4], 0);
    /* THRE enabled but OUT2 clear: pending in IIR, but the PC gates the line. */
    tb_out(&t, COM1 + IER, 1, 0x02);
    ck_assert_uint_eq(tb_in(&t, COM1 + IIR, 1), 0x02);         /* reading acknowledges */
    ck_assert_uint_eq(tb_in(&t, COM1 + IIR, 1), 0x01);
    tb_out(&t, COM1 + MCR, 1, 0x0b);                            /* DTR RTS OUT2 */
    tb_out(&t, COM1 + IER, 1, 0x00);
    tb_out(&t, COM1 + IER, 1, 0x02);                            /* re-enable: THRE at once */
    ck_assert_uint_eq(tb_irqfd_count(&t, 4), 1);
    ck_assert_uint_eq(tb_in(&t, COM1 + IIR, 1), 0x02);
    /* Each transmitted byte empties THR again: one edge each. */
    tb_out(&t, COM1, 1, 'a');
    ck_assert_uint_eq(tb_irqfd_count(&t, 4), 1);
    tb_out(&t, COM1, 1, 'b');                                   /* line still high: no edge */
    ck_assert_uint_eq(tb_in(&t, COM1 + IIR, 1), 0x02);
    tb_out(&t, COM1, 1, 'c');
    ck_assert_uint_eq(tb_irqfd_count(&t, 4), 1);
    tb_fini(&t);
}
END_TEST

START_TEST(test_uart_loopback_fifo)
{
    struct tb t;

    tb_init(&t, false);
    tb_add(&t, "uart", "com1", "out=null");
    ck_assert_int_eq(dm_start(t.dm), 0);
    tb_out(&t, COM1 + MCR, 1, 0x1f);                            /* loop + all outputs */
    ck_assert_uint_eq(tb_in(&t, COM1 + MSR, 1) & 0xf0, 0xf0);   /* CTS DSR RI DCD mirrored */
    tb_out(&t, COM1 + MCR, 1, 0x10);
    ck_assert_uint_eq(tb_in(&t, COM1 + MSR, 1) & 0xf4, 0x04);   /* RI trailing edge */
    /* No FIFO: one byte holding register, a second byte overruns. */
    tb_out(&t, COM1, 1, 'x');
    tb_out(&t, COM1, 1, 'y');
    ck_assert_uint_eq(tb_in(&t, COM1 + LSR, 1) & 0x03, 0x03);   /* DR | OE */
    ck_assert_uint_eq(tb_in(&t, COM1 + LSR, 1) & 0x03, 0x01);   /* OE cleared by the read */
    ck_assert_uint_eq(tb_in(&t, COM1 + RBR, 1), 'x');
    ck_assert_uint_eq(tb_in(&t, COM1 + LSR, 1) & 0x01, 0);
    /* FIFO on, trigger 4: RDA at the 4th byte, time-out below it. */
    tb_out(&t, COM1 + FCR, 1, 0x47);
    tb_out(&t, COM1 + IER, 1, 0x01);
    tb_out(&t, COM1, 1, '1');
    ck_assert_uint_eq(tb_in(&t, COM1 + IIR, 1), 0xcc);          /* FIFO + char time-out */
    tb_out(&t, COM1, 1, '2');
    tb_out(&t, COM1, 1, '3');
    tb_out(&t, COM1, 1, '4');
    ck_assert_uint_eq(tb_in(&t, COM1 + IIR, 1), 0xc4);          /* RDA */
    for (int i = 0; i < 16; i++)
        tb_out(&t, COM1, 1, 'a' + i);                           /* 4 + 16 > 16: overrun */
    ck_assert_uint_eq(tb_in(&t, COM1 + LSR, 1) & 0x02, 0x02);
    char got[17] = { 0 };
    for (int i = 0; i < 16; i++)
        got[i] = (char)tb_in(&t, COM1 + RBR, 1);
    ck_assert_str_eq(got, "1234abcdefghijkl");
    ck_assert_uint_eq(tb_in(&t, COM1 + IIR, 1), 0xc1);
    ck_assert_uint_eq(tb_in(&t, COM1 + RBR, 1), 0);             /* empty FIFO reads 0 */
    /* Clearing the FIFO drops what it holds. */
    tb_out(&t, COM1, 1, 'z');
    tb_out(&t, COM1 + FCR, 1, 0x03);
    ck_assert_uint_eq(tb_in(&t, COM1 + LSR, 1) & 0x01, 0);
    /* RLS interrupt on overrun outranks data. */
    tb_out(&t, COM1 + IER, 1, 0x05);
    for (int i = 0; i < 17; i++)
        tb_out(&t, COM1, 1, 'q');
    ck_assert_uint_eq(tb_in(&t, COM1 + IIR, 1), 0xc6);
    tb_fini(&t);
}
END_TEST

START_TEST(test_uart_save_restore)
{
    struct tb t;
    GByteArray *img = g_byte_array_new();

    tb_init(&t, false);
    tb_add(&t, "uart", "com1", "out=null");
    tb_out(&t, COM1 + MCR, 1, 0x10);
    tb_out(&t, COM1 + FCR, 1, 0x01);
    tb_out(&t, COM1, 1, 'k');
    tb_out(&t, COM1 + SCR, 1, 0x42);
    ck_assert_int_eq(dm_save(t.dm, img), 0);
    dm_reset(t.dm);
    ck_assert_uint_eq(tb_in(&t, COM1 + SCR, 1), 0);
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len), 0);
    ck_assert_uint_eq(tb_in(&t, COM1 + SCR, 1), 0x42);
    ck_assert_uint_eq(tb_in(&t, COM1 + RBR, 1), 'k');
    /* A state with an impossible FIFO index is refused. */
    img->data[img->len - 18] = 200;     /* rx_head */
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len), -EINVAL);
    /* So is one holding two bytes with the FIFO off (a one-byte holding register). */
    img->data[img->len - 18] = 0;
    img->data[img->len - 23] = 0x00;    /* fcr: FIFO off */
    img->data[img->len - 17] = 2;       /* rx_count */
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len), -EINVAL);
    img->data[img->len - 17] = 1;
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len), 0);
    g_byte_array_free(img, TRUE);
    tb_fini(&t);
}
END_TEST

static bool got_n(struct tb *t, void *arg)
{
    return (tb_in(t, COM1 + LSR, 1) & 1) != 0;
}

START_TEST(test_uart_socket_input)
{
    struct tb t;
    char *path = tmp_path("in.sock");
    char *opts = g_strdup_printf("out=socket:%s,in=socket:%s", path, path);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char echo[8] = { 0 };
    int c;

    tb_init(&t, false);
    tb_add(&t, "uart", "com1", opts);
    tb_out(&t, COM1 + FCR, 1, 0x01);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
    /* 40 bytes into a 16-byte FIFO: flow control holds the rest back, none lost. */
    char msg[41];
    for (int i = 0; i < 40; i++)
        msg[i] = (char)('A' + i % 26);
    ck_assert_int_eq(write(c, msg, 40), 40);
    GString *got = g_string_new(NULL);
    while (got->len < 40) {
        tb_loop_until(&t, got_n, NULL, 5000);
        if (!(tb_in(&t, COM1 + LSR, 1) & 1))
            break;
        while (tb_in(&t, COM1 + LSR, 1) & 1)
            g_string_append_c(got, (char)tb_in(&t, COM1 + RBR, 1));
        ck_assert_uint_le(got->len, 40);
    }
    ck_assert_uint_eq(got->len, 40);
    ck_assert_int_eq(memcmp(got->str, msg, 40), 0);
    g_string_free(got, TRUE);
    /* Output goes back to the same client. */
    tb_out(&t, COM1, 1, 'o');
    tb_out(&t, COM1, 1, 'k');
    ck_assert_int_eq(read(c, echo, 2), 2);
    ck_assert_str_eq(echo, "ok");
    close(c);
    tb_fini(&t);
    g_free(opts);
    rm_path(path);
}
END_TEST

START_TEST(test_uart_pty)
{
    struct tb t;
    char buf[4] = { 0 };

    tb_init(&t, false);
    struct ferry_dm_device *d = tb_add(&t, "uart", "com1", "out=pty,in=pty");
    json_t *root = dm_query_devices(t.dm);
    json_t *o = json_array_get(root, 0);
    const char *out = json_string_value(json_object_get(o, "out"));
    ck_assert_msg(g_str_has_prefix(out, "pty:/dev/pts/"), "out=%s", out);
    int fd = open(out + 4, O_RDWR | O_NOCTTY);
    ck_assert_int_ge(fd, 0);
    tb_out(&t, COM1, 1, 'p');
    ck_assert_int_eq(read(fd, buf, 1), 1);
    ck_assert_int_eq(buf[0], 'p');
    close(fd);
    json_decref(root);
    (void)d;
    tb_fini(&t);
}
END_TEST

TCase *dm_uart_tcase(void)
{
    TCase *tc = tcase_create("uart");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_uart_reset_state);
    tcase_add_test(tc, test_uart_output_file);
    tcase_add_test(tc, test_uart_thre_interrupt);
    tcase_add_test(tc, test_uart_loopback_fifo);
    tcase_add_test(tc, test_uart_save_restore);
    tcase_add_test(tc, test_uart_socket_input);
    tcase_add_test(tc, test_uart_pty);
    return tc;
}
