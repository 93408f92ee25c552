// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: ferry-dm's control socket as a byte stream, from up to
 * three clients at once, with SCM_RIGHTS fds, against the default machine
 * (as fuzz-dm) and the companion side behind the control object: USB
 * (dm-usb.c, confined: only fds passed in) and PCI passthrough (dm-vfio.c),
 * both on a QMP connection to a simulated QEMU that answers every command
 * (device_del with DEVICE_DELETED right after).  The framing (partial lines,
 * CR LF, over-long lines, half-close, replies left unread), every command
 * and every error path run as ferry-dm runs them.
 *
 * Records: op (1 byte), then by op & 7:
 *   0  send: length u8 (x 4 if op & 8), bytes; op & 16 also passes
 *      1 + (op >> 5) % 4 fds (memfd, /dev/null, a socket) with them
 *   2  switch to client (op >> 3) % 3, connecting it if needed
 *   3  half-close (shut for writing) the current client
 *   4  close the current client
 *   else  run the loop; read the replies waiting
 * "qemu" and "\u" are masked in the input: the qemu device type starts a
 * process, and a JSON escape could spell its name.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "devmodel/control.h"
#include "companion/dm-qmp.h"
#include "companion/dm-usb.h"
#include "companion/dm-vfio.h"
#include "devmodel/dm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define FUZZ_CLIENTS 3
#define FUZZ_TIMEOUT_MS 5000

static char dir[] = "/tmp/ferry-fuzz-control-XXXXXX";
static char qmp_path[108], control_path[108];
static int qemu_listen = -1;

/* ---- a simulated QEMU: greets, answers everything, DEVICE_DELETED ---- */

static void qemu_send(int s, const char *line)
{
    size_t n = strlen(line), off = 0;

    while (off < n) {
        ssize_t w = send(s, line + off, n - off, MSG_NOSIGNAL);

        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

static void qemu_answer(int s, const char *line)
{
    json_t *o = ferry_json_parse_object(line, strlen(line), NULL, 0), *args;
    const char *cmd, *dev;
    char *id = NULL, *reply;

    if (!o) {
        qemu_send(s, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"bad JSON\"}}\n");
        return;
    }
    cmd = ferry_json_string(o, "execute", "");
    if (json_object_get(o, "id"))
        id = ferry_json_dumps(json_object_get(o, "id"), false);
    args = ferry_json_object(o, "arguments");
    dev = ferry_json_string(args, "id", NULL);
    if (!strcmp(cmd, "query-pci"))
        reply = g_strdup_printf("{\"return\": [{\"bus\": 0, \"devices\": [{\"bus\": 0, "
                                "\"slot\": 4, \"function\": 0, \"qdev_id\": \"%s\"}]}]%s%s}\n",
                                "hostdev0", id ? ", \"id\": " : "", id ? id : "");
    else
        reply = g_strdup_printf("{\"return\": {}%s%s}\n", id ? ", \"id\": " : "",
                                id ? id : "");
    qemu_send(s, reply);
    g_free(reply);
    if (!strcmp(cmd, "device_del") && dev) {
        json_t *n = json_pack("{s:s, s:{s:s}}", "event", "DEVICE_DELETED", "data", "device", dev);
        char *ev = ferry_json_dumps(n, false);

        qemu_send(s, ev);
        qemu_send(s, "\n");
        free(ev);
        json_decref(n);
    }
    free(id);
    json_decref(o);
}

static void *qemu_main(void *arg)
{
    struct pollfd lp = { .fd = qemu_listen, .events = POLLIN };
    GString *in = g_string_new(NULL);
    int s;

    (void)arg;
    if (poll(&lp, 1, FUZZ_TIMEOUT_MS) != 1 ||
        (s = accept4(qemu_listen, NULL, NULL, SOCK_CLOEXEC)) < 0) {
        g_string_free(in, TRUE);
        return NULL;
    }
    qemu_send(s, "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, "
                 "\"micro\": 0}}, \"capabilities\": []}}\n");
    for (;;) {
        char buf[4096];
        char cbuf[CMSG_SPACE(sizeof(int) * 4)];
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        ssize_t n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
        char *nl;

        if (n <= 0)
            break;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                continue;
            for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                int fd;

                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                close(fd);
            }
        }
        g_string_append_len(in, buf, n);
        while ((nl = memchr(in->str, '\n', in->len))) {
            *nl = 0;
            qemu_answer(s, in->str);
            g_string_erase(in, 0, nl + 1 - in->str);
        }
    }
    close(s);
    g_string_free(in, TRUE);
    return NULL;
}

static void cleanup(void)
{
    unlink(qmp_path);
    unlink(control_path);
    rmdir(dir);
}

static void setup(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    FUZZ_CHECK(mkdtemp(dir));
    snprintf(qmp_path, sizeof(qmp_path), "%s/qmp", dir);
    snprintf(control_path, sizeof(control_path), "%s/control", dir);
    strcpy(sa.sun_path, qmp_path);
    qemu_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(qemu_listen >= 0);
    FUZZ_CHECK(bind(qemu_listen, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    FUZZ_CHECK(listen(qemu_listen, 4) == 0);
    signal(SIGPIPE, SIG_IGN);       /* as ferry-dm's main() */
    /* detaches wait this long for a DEVICE_DELETED that does not come */
    setenv(DM_QMP_WAIT_ENV, "20", 1);
    atexit(cleanup);
}

/* ---- ferry-dm's side: the machine, the control socket, the companion ---- */

struct companion {
    struct companion_usb *usb;
    struct companion_vfio *vfio;
};

static char *control_command(void *opaque, struct ferry_dm_control_req *req, const char *cmd,
                             json_t *args, json_t *id, int *fd)
{
    struct companion *m = opaque;
    char *r = m->usb ? companion_usb_command(m->usb, req, cmd, args, id, fd) : NULL;

    return r ? r : companion_vfio_command(m->vfio, req, cmd, args, id, fd);
}

static void quit(void *opaque)
{
    *(int *)opaque = 1;
}

static const struct ferry_dm_control_ops control_ops = { .quit = quit };

static void add(struct ferry_dm *dm, const char *type, const char *id, const char *opts)
{
    struct ferry_dm_opts *o = NULL;

    FUZZ_CHECK(dm_opts_parse(opts, &o) == 0);
    FUZZ_CHECK(dm_device_add(dm, type, id, o, NULL) == 0);
    dm_opts_free(o);
}

static int client_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    FUZZ_CHECK(s >= 0);
    strcpy(sa.sun_path, control_path);
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        /* EAGAIN: the listen backlog is full of connections the loop has
         * not accepted yet (clients that came and went between runs of
         * the loop); this client stays away */
        FUZZ_CHECK(errno == EAGAIN);
        close(s);
        return -1;
    }
    return s;
}

static void pump(struct event_base *base, int *cl)
{
    char buf[65536];

    for (int i = 0; i < 4; i++) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        for (int c = 0; c < FUZZ_CLIENTS; c++)
            while (cl[c] >= 0 && recv(cl[c], buf, sizeof(buf), MSG_DONTWAIT) > 0)
                ;
    }
}

static void send_fds(int s, const uint8_t *p, size_t len, unsigned nfds)
{
    int fds[4] = { -1, -1, -1, -1 };
    char cbuf[CMSG_SPACE(sizeof(fds))] = { 0 };
    char one = '\n';
    struct iovec iov = { .iov_base = len ? (void *)p : &one, .iov_len = len ? len : 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    int sv[2] = { -1, -1 };

    for (unsigned i = 0; i < nfds; i++) {
        switch (i) {
        case 0: fds[i] = memfd_create("fuzz", MFD_CLOEXEC); break;
        case 1: fds[i] = open("/dev/null", O_RDWR | O_CLOEXEC); break;
        case 2:
            FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
            fds[i] = sv[0];
            break;
        default: fds[i] = dup(fds[0]); break;
        }
        FUZZ_CHECK(fds[i] >= 0);
    }
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    (void)sendmsg(s, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    for (unsigned i = 0; i < nfds; i++)
        close(fds[i]);
    if (sv[1] >= 0)
        close(sv[1]);
}

static uint8_t *masked(const uint8_t *data, size_t size)
{
    uint8_t *m = malloc(size ? size : 1);

    FUZZ_CHECK(m);
    memcpy(m, data, size);
    for (size_t i = 0; i + 1 < size; i++) {
        if (m[i] == '\\' && (m[i + 1] == 'u' || m[i + 1] == 'U'))
            m[i + 1] = 'n';
        if (i + 3 < size && !memcmp(m + i, "qemu", 4))
            m[i] = 'Q';
    }
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *in_data, size_t size)
{
    struct event_base *base = event_base_new();
    struct ferry_dm_config cfg = { .name = "fuzz", .base = base };
    struct ferry_dm *dm;
    struct ferry_dm_control *control = NULL;
    struct companion m = { 0 };
    struct companion_qmp *d = NULL;
    int cl[FUZZ_CLIENTS] = { -1, -1, -1 }, cur = 0, quitting = 0;
    uint8_t *data = masked(in_data, size);
    size_t pos = 0;
    pthread_t qemu;

    if (qemu_listen < 0)
        setup();
    FUZZ_CHECK(base && dm_create(&cfg, &dm) == 0);
    add(dm, "pci-host", "pci", "");
    add(dm, "uart", "com1", "out=null");
    add(dm, "rtc", "rtc", "");
    add(dm, "acpi-pm", "pm", "");
    add(dm, "pci-test", "pt", "");
    FUZZ_CHECK(dm_start(dm) == 0);

    FUZZ_CHECK(pthread_create(&qemu, NULL, qemu_main, NULL) == 0);
    FUZZ_CHECK(companion_qmp_open(base, qmp_path, NULL, NULL, &d) == 0);
    FUZZ_CHECK(companion_vfio_load(NULL, &m.vfio) == 0);
    FUZZ_CHECK(companion_usb_start(base, d, qmp_path, NULL, NULL, NULL, "fuzz", NULL, true, false, NULL, NULL,
                                   &m.usb) == 0);
    FUZZ_CHECK(companion_vfio_start(m.vfio, d, qmp_path) == 0);
    FUZZ_CHECK(dm_control_open(dm, control_path, &control_ops, &quitting, &control) == 0);
    dm_control_set_handler(control, control_command, &m);
    cl[0] = client_connect();

    while (pos < size && !quitting) {
        uint8_t op = data[pos++];

        switch (op & 7) {
        case 0: {
            if (pos >= size)
                break;
            size_t len = (size_t)data[pos++] * (op & 8 ? 4 : 1);

            if (len > size - pos)
                len = size - pos;
            if (cl[cur] >= 0) {
                if (op & 16)
                    send_fds(cl[cur], data + pos, len, 1 + (op >> 5) % 4);
                else
                    (void)send(cl[cur], data + pos, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            }
            pos += len;
            break;
        }
        case 2:
            cur = (op >> 3) % FUZZ_CLIENTS;
            if (cl[cur] < 0)
                cl[cur] = client_connect();
            break;
        case 3:
            if (cl[cur] >= 0)
                shutdown(cl[cur], SHUT_WR);
            break;
        case 4:
            if (cl[cur] >= 0)
                close(cl[cur]);
            cl[cur] = -1;
            break;
        default:
            pump(base, cl);
            break;
        }
    }
    pump(base, cl);
    for (int c = 0; c < FUZZ_CLIENTS; c++)
        if (cl[c] >= 0)
            close(cl[c]);
    pump(base, cl);
    dm_control_close(control);
    companion_usb_free(m.usb);
    companion_vfio_free(m.vfio);
    companion_qmp_free(d);
    pthread_join(qemu, NULL);
    dm_destroy(dm);
    event_base_free(base);
    free(data);
    return 0;
}
