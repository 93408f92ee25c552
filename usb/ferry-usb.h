/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libferry-usb: host USB devices through libusb, the device-access policy,
 * usbredir endpoints (libusbredirhost) and the QMP side of attaching them to
 * a QEMU guest's usb-redir device.
 *
 * Everything runs on the caller's libevent loop (struct event_base): libusb's
 * file descriptors are watched through libusb_get_pollfds() and its
 * added/removed notifiers, events are handled with a zero timeout and the
 * next libusb timeout re-arms a timer.  No thread of ours, no busy loop.
 *
 * Objects, from the bottom up:
 *   ferry_usb_host    libusb context, device list, hotplug
 *   ferry_usb_policy  usbredir filter rules plus the built-in default
 *   ferry_usb_redir   one usbredir endpoint: a device handle and a socket
 *   ferry_usb_qmp     QMP for usb-redir hot-add, on common/qmp.c's client
 *   ferry_usb_service all of the above for a set of guests (what ferry-dm
 *                     embeds): assignments, attach/detach, reattach on replug
 *
 * Functions return 0 or a negative errno; where an `err` buffer is taken it
 * receives a message naming what failed, on what and why.
 *
 * Embedding (what ferry-dm does, companion/dm-usb.c):
 *     usb_service_new(base, rundir, &ops, opaque, &usb);
 *         ops.no_discovery = true when confined (libusb's
 *         LIBUSB_OPTION_NO_DEVICE_DISCOVERY is process-wide: see below)
 *     usb_service_add_guest(usb, qmp, ...)   QMP connected now, kept
 *     usb_service_set_policy / _load_config  the [usb] group
 *     control "usb-attach"  -> usb_service_attach()
 *             with an fd    -> usb_service_attach_fd()
 *             "usb-detach"  -> usb_service_detach()
 *             "query-usb"   -> usb_service_list_json()
 *     at exit: usb_service_free(usb)   (gives every device back)
 * With a guest added by _add_guest, no socket is created or connected after
 * start-up: each usbredir channel is a socketpair whose other end QEMU gets
 * with getfd + chardev-add (fine under seccomp).  The QMP calls are
 * synchronous (bounded by 10 s).
 */
#ifndef FERRY_USB_H
#define FERRY_USB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "common/ferry-log.h"

#define FERRY_USB_API __attribute__((visibility("default")))

struct event_base;
struct libusb_context;
struct libusb_device;
struct libusb_device_handle;
struct _GKeyFile;

#define FERRY_USB_STR_MAX    128   /* manufacturer, product, serial */
#define FERRY_USB_PORT_MAX   32    /* "1-2.3.4" */
#define FERRY_USB_IFACE_MAX  32    /* interfaces looked at per device */
#define FERRY_USB_CONFIG_MAX 8     /* configurations looked at per device */
#define FERRY_USB_ERR_MAX    256   /* size of the err buffers below */

struct ferry_usb_iface {
    uint8_t cls, subcls, proto;
};

/* What the host knows about one device; a snapshot, plain data. */
struct ferry_usb_devinfo {
    uint8_t bus, addr;
    char port[FERRY_USB_PORT_MAX];      /* "1-2.3"; "" when unknown */
    uint16_t vid, pid, bcd_device;
    uint8_t cls, subcls, proto;
    int speed_mbps;                     /* 1 (low: 1.5), 12, 480, 5000, ... */
    char manufacturer[FERRY_USB_STR_MAX];
    char product[FERRY_USB_STR_MAX];
    char serial[FERRY_USB_STR_MAX];
    char driver[64];                    /* host driver on the first bound interface */
    /* The active configuration's interfaces (their first altsetting). */
    unsigned n_ifaces;
    struct ferry_usb_iface ifaces[FERRY_USB_IFACE_MAX];
    /* Every other kind of interface the device declares, in another
     * altsetting or configuration: a guest can switch to those, so the
     * policy judges them too.  other_truncated: more kinds (or
     * configurations) than the arrays hold; the policy refuses such a device. */
    unsigned n_other;
    struct ferry_usb_iface other[FERRY_USB_IFACE_MAX];
    bool other_truncated;
};

/* Identity used to recognise a device after a replug: "vid:pid:serial" when
 * it has a serial, otherwise its port path. */
FERRY_USB_API void usb_identity(const struct ferry_usb_devinfo *d,
                                      char *buf, size_t len);

/* ---- device specifications as users type them ---------------------------- */
enum ferry_usb_spec_kind {
    FERRY_USB_SPEC_VIDPID,         /* 046d:c52b */
    FERRY_USB_SPEC_VIDPID_SERIAL,  /* 046d:c52b:SERIAL */
    FERRY_USB_SPEC_PORT,           /* 1-2.3 */
    FERRY_USB_SPEC_BUSADDR,        /* 1.5 */
};

struct ferry_usb_spec {
    enum ferry_usb_spec_kind kind;
    uint16_t vid, pid;
    uint8_t bus, addr;
    char serial[FERRY_USB_STR_MAX];
    char port[FERRY_USB_PORT_MAX];
};

FERRY_USB_API FERRY_MUST_CHECK int
usb_spec_parse(const char *s, struct ferry_usb_spec *out);
FERRY_USB_API bool usb_spec_match(const struct ferry_usb_spec *spec,
                                        const struct ferry_usb_devinfo *d);
/* The spec in the same syntax it was parsed from. */
FERRY_USB_API void usb_spec_format(const struct ferry_usb_spec *spec,
                                         char *buf, size_t len);

/* ---- host devices ---------------------------------------------------------- */
struct ferry_usb_host;

struct ferry_usb_host_ops {
    ferry_log_fn log;
    void *log_opaque;                   /* passed to log */
    /* Hotplug, called from the event loop (never from inside libusb). */
    void (*arrived)(void *opaque, const struct ferry_usb_devinfo *d);
    void (*left)(void *opaque, const struct ferry_usb_devinfo *d);
};

/* discover=false: no enumeration and no hotplug; only fds passed in by a
 * broker are used (usb_host_wrap_fd).  libusb 1.0.26 can only say so
 * for every context the process creates afterwards (the option is set on
 * the NULL context), so do not mix both kinds in one process.  The devices already present are
 * reported through ops->arrived once the loop runs. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_host_new(struct event_base *base, bool discover,
                   const struct ferry_usb_host_ops *ops, void *opaque,
                   struct ferry_usb_host **out);
FERRY_USB_API void usb_host_free(struct ferry_usb_host *h);
FERRY_USB_API struct libusb_context *usb_host_context(struct ferry_usb_host *h);
/* The current device list (valid until the loop runs again). */
FERRY_USB_API const struct ferry_usb_devinfo *
usb_host_devices(struct ferry_usb_host *h, size_t *n);
/* Scan now (outside of hotplug), e.g. for a one-shot `ferry usb list`. */
FERRY_USB_API FERRY_MUST_CHECK int usb_host_rescan(struct ferry_usb_host *h);
/* The one device matching spec.  -ENOENT if none; -EEXIST if several, and
 * err lists the candidates. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_host_find(struct ferry_usb_host *h, const struct ferry_usb_spec *spec,
                    struct ferry_usb_devinfo *out, char *err, size_t errlen);
FERRY_USB_API FERRY_MUST_CHECK int
usb_host_open(struct ferry_usb_host *h, const struct ferry_usb_devinfo *d,
                    struct libusb_device_handle **out, char *err, size_t errlen);
/* Wrap a usbfs fd opened by a privileged broker (libusb_wrap_sys_device);
 * the fd stays the caller's until the handle is closed.  info is filled
 * from the descriptors (no port path: usbfs fds do not carry it). */
FERRY_USB_API FERRY_MUST_CHECK int
usb_host_wrap_fd(struct ferry_usb_host *h, int fd,
                       struct libusb_device_handle **out,
                       struct ferry_usb_devinfo *info, char *err, size_t errlen);
/* Fill a devinfo from a libusb device (strings from sysfs when present). */
FERRY_USB_API void usb_devinfo_from_libusb(struct libusb_device *dev,
                                                 struct ferry_usb_devinfo *d);

/* SCM_RIGHTS helpers for brokers: one message of up to len bytes with one fd. */
FERRY_USB_API FERRY_MUST_CHECK int usb_fd_send(int sock, int fd,
                                                     const void *msg, size_t len);
/* Returns the message length; *fd is -1 when none came. */
FERRY_USB_API FERRY_MUST_CHECK int usb_fd_recv(int sock, int *fd,
                                                     void *msg, size_t len);

/* ---- policy ---------------------------------------------------------------- */
struct ferry_usb_policy;

/* rules: usbredir filter syntax, "class,vendor,product,version,allow|..."
 * with -1 as wildcard; NULL or "" for none (only the built-in default). */
FERRY_USB_API FERRY_MUST_CHECK int
usb_policy_new(const char *rules, struct ferry_usb_policy **out,
                     char *err, size_t errlen);
FERRY_USB_API void usb_policy_free(struct ferry_usb_policy *p);
/* 0: allowed; -EPERM: refused, why names the rule ("rule 2
 * '0x03,-1,-1,-1,0'" or "built-in rule: HID keyboard/mouse").  why is
 * filled in both cases. */
FERRY_USB_API int usb_policy_check(const struct ferry_usb_policy *p,
                                         const struct ferry_usb_devinfo *d,
                                         char *why, size_t len);

/* The built-in refusal of a device whatever the rules say (hubs, HID
 * keyboards and mice, more interfaces than judged), or NULL. */
FERRY_USB_API const char *usb_policy_builtin(const struct ferry_usb_devinfo *d);
/* The rules alone, usbredirfilter's verdict over the device and every
 * interface of every configuration: 0 allowed, -EPERM denied, -ENOENT no
 * rule decided (no built-in rule applied). */
FERRY_USB_API int usb_policy_match(const struct ferry_usb_policy *p,
                                   const struct ferry_usb_devinfo *d);
/* The rules in filter syntax (g_free). */
FERRY_USB_API char *usb_policy_format(const struct ferry_usb_policy *p);

/* ---- usbredir endpoint ----------------------------------------------------- */
struct ferry_usb_redir;

/*
 * The data of one usbredir packet from the peer, at most (usbredirparser
 * itself takes up to 128 MiB, and buffers a packet whole before anything
 * looks at it).  A packet announced larger ends the connection at its
 * header, before any of its data is read.  The largest transfers real
 * guests make are mass-storage data phases: Linux's usb-storage asks at
 * most max_sectors (2048 x 512 bytes = 1 MiB on SuperSpeed, 120 KiB below)
 * per command and Windows' usbstor 1 MiB; HID, serial, audio and video
 * transfers are KiBs.  4 MiB is four times the largest of these.  As the
 * parser assembles one packet at a time, it is also what one peer can make
 * Ferry buffer of its input.
 */
#define FERRY_USB_REDIR_PACKET_MAX (4u << 20)
/*
 * What Ferry holds for one peer that does not read: past one packet's worth
 * (or 1024 packets) it stops reading the peer's requests; answers to those
 * already taken and the streams it started (interrupt, bulk receiving;
 * isochronous data is dropped by usbredirhost first) may still come, up to
 * this, and then the peer is disconnected.  16 packets' worth: a peer that
 * reads, however slowly, never gets near it.
 */
#define FERRY_USB_REDIR_PEER_MAX (16u * FERRY_USB_REDIR_PACKET_MAX)

enum ferry_usb_redir_end {
    FERRY_USB_REDIR_PEER_CLOSED,   /* the guest side went away */
    FERRY_USB_REDIR_PEER_INVALID,  /* malformed input: disconnected */
    FERRY_USB_REDIR_DEVICE_LOST,   /* the device was unplugged */
    FERRY_USB_REDIR_IO_ERROR,
};

struct ferry_usb_redir_ops {
    ferry_log_fn log;
    void *log_opaque;                   /* passed to log */
    /* The endpoint stopped; free it from here or later. */
    void (*ended)(void *opaque, struct ferry_usb_redir *r, enum ferry_usb_redir_end why);
    /* Optional transport (TLS, or bytes the owner read already): the
     * connection's bytes go through these, with opaque, instead of read()
     * and send() on fd, which is still the socket watched for readiness.
     * Both are non-blocking: -1 with errno EAGAIN when nothing moves now;
     * recv returns 0 when the peer closed.  pending: bytes recv returns
     * without the socket being readable (a TLS record already decrypted). */
    ssize_t (*recv)(void *opaque, void *buf, size_t len);
    ssize_t (*send)(void *opaque, const void *buf, size_t len);
    size_t (*pending)(void *opaque);
    /* Optional: the device was unplugged.  Set, the connection survives: the
     * peer is told the device is gone (device_disconnect) and
     * usb_redir_set_device gives it the replugged one on the same
     * connection.  NULL: the endpoint ends (FERRY_USB_REDIR_DEVICE_LOST). */
    void (*device_lost)(void *opaque, struct ferry_usb_redir *r);
};

/* Serve `handle` (ownership taken, closed on failure too) to the usbredir
 * guest on the connected socket `fd` (ownership taken).  handle may be NULL:
 * the peer then talks to a host side without a device (fuzzing).  Host kernel
 * drivers are detached now and given back by usb_redir_free. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_redir_new(struct ferry_usb_host *host, struct libusb_device_handle *handle,
                    int fd, const char *name, const struct ferry_usb_redir_ops *ops,
                    void *opaque, struct ferry_usb_redir **out);
FERRY_USB_API void usb_redir_free(struct ferry_usb_redir *r);
/* Another device (a replug) on the same connection (ownership of handle
 * taken, closed on failure too), or NULL: the device back to the host, the
 * peer told it is gone, the connection kept. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_redir_set_device(struct ferry_usb_redir *r, struct libusb_device_handle *handle);
FERRY_USB_API uint64_t usb_redir_bytes(const struct ferry_usb_redir *r);

/*
 * Handing a connection to another process (ferry-dm's replace,
 * docs/usb.md "Replacing ferry-dm"): the peer sees nothing, no second
 * hello, no reset, no disconnect, no lost or repeated packet.
 *
 * usb_redir_quiesce: take no further request from the peer (the one being
 * read is still taken whole); what arrives stays in the socket or the
 * read-ahead.  usb_redir_handover_ready: 0 once nothing is in flight (every
 * request taken has been answered, and the streams are stopped on the
 * host side at a packet boundary, what they had received sent on); -EAGAIN
 * (not yet) or -EBUSY (not at all: a filter; TLS: -EOPNOTSUPP) with why.
 * usb_redir_export: then the state (the peer's hello, bytes read and not
 * parsed, bytes queued and not sent, the streams with their parameters,
 * the alternate settings, the bulk streams) appended to state; from then
 * on the endpoint does nothing (the successor serves the same socket and
 * device fd) until usb_redir_resume (the handover failed: serve on, the
 * streams started again).  Freeing an exported endpoint gives the device
 * back to the host: a predecessor exits without it.
 */
FERRY_USB_API void usb_redir_quiesce(struct ferry_usb_redir *r);
FERRY_USB_API void usb_redir_resume(struct ferry_usb_redir *r);
/* Quiescing without the event loop (inside a handover that blocks it): read
 * the rest of the packet being read, send what is queued. */
FERRY_USB_API void usb_redir_quiesce_step(struct ferry_usb_redir *r);
/* Requests taken from the peer and not answered yet. */
FERRY_USB_API unsigned usb_redir_in_flight(const struct ferry_usb_redir *r);
FERRY_USB_API int usb_redir_handover_ready(struct ferry_usb_redir *r, char *why, size_t len);
FERRY_USB_API FERRY_MUST_CHECK int usb_redir_export(struct ferry_usb_redir *r, GByteArray *state,
                                                    char *why, size_t len);
/* The connection's socket; the device's usbfs fd (found in /proc/self/fd
 * by its node's name), or -errno. */
FERRY_USB_API int usb_redir_fd(const struct ferry_usb_redir *r);
FERRY_USB_API int usb_redir_device_fd(const struct ferry_usb_redir *r);
/*
 * The successor's side: serve `handle` (the same device, wrapped from the
 * passed usbfs fd; ownership taken) to the peer on the passed socket `fd`
 * (ownership taken) from usb_redir_export's state.  Its usbredirhost is
 * given the peer's hello again and takes the device without resetting it;
 * what it says to greet and connect is kept from the peer.  0, or -errno
 * with why (a state of another version, a malformed one).
 */
FERRY_USB_API FERRY_MUST_CHECK int
usb_redir_adopt(struct ferry_usb_host *host, struct libusb_device_handle *handle, int fd,
                const uint8_t *state, size_t len, const char *name,
                const struct ferry_usb_redir_ops *ops, void *opaque,
                struct ferry_usb_redir **out, char *why, size_t whylen);
/* An adopted endpoint's switch window: how long (us, from the monotonic
 * clock, across the two processes) its isochronous streams had no transfer
 * in the device; 0 when it took over none. */
FERRY_USB_API uint64_t usb_redir_stream_gap_us(const struct ferry_usb_redir *r);

/* Sockets: "unix:PATH" or "HOST:PORT" / "tcp:HOST:PORT".  Non-blocking,
 * close-on-exec; TCP sockets get TCP_NODELAY (also on accepted ones). */
FERRY_USB_API FERRY_MUST_CHECK int usb_listen(const char *addr, char *err, size_t errlen);
FERRY_USB_API FERRY_MUST_CHECK int usb_connect(const char *addr, char *err, size_t errlen);
FERRY_USB_API FERRY_MUST_CHECK int usb_accept(int lfd);
/* What usb_listen does before binding unix:PATH: 0 when PATH is free now
 * (nothing there, or a socket nobody listens on, removed); -EEXIST (not a
 * socket), -EADDRINUSE (a process listens on it) or -errno with err. */
FERRY_USB_API int usb_unix_clear_stale(const char *path, char *err, size_t errlen);

/* ---- QMP --------------------------------------------------------------------- */
struct ferry_usb_qmp;

FERRY_USB_API FERRY_MUST_CHECK int
usb_qmp_open(const char *path, int timeout_ms, struct ferry_usb_qmp **out,
                   char *err, size_t errlen);
/* The same on a connected socket fd (an inherited socketpair end), which the
 * client owns from now on (closed on failure too); path names it in messages. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_qmp_open_fd(int fd, const char *path, int timeout_ms, struct ferry_usb_qmp **out,
                char *err, size_t errlen);
/* A connection another process negotiated (ferry_qmp_adopt): fd taken. */
FERRY_USB_API FERRY_MUST_CHECK int usb_qmp_adopt(const char *path, int fd, const void *unread,
                                                 size_t len, int timeout_ms,
                                                 struct ferry_usb_qmp **out);
FERRY_USB_API void usb_qmp_close(struct ferry_usb_qmp *q);
/* Run one command; args_json may be NULL.  *reply_json (may be NULL) gets
 * the "return" value as JSON text; an "error" reply is -EIO with its desc. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_qmp_execute(struct ferry_usb_qmp *q, const char *cmd, const char *args_json,
                      char **reply_json, char *err, size_t errlen);
/* Wait for DEVICE_DELETED of device id (also seen while executing), blocking
 * (common/qmp-wait.h's ferry_qmp_wait_deleted). */
FERRY_USB_API FERRY_MUST_CHECK int
usb_qmp_wait_deleted(struct ferry_usb_qmp *q, const char *id, char *err, size_t errlen);
/* The common/qmp.h client underneath, for a loop owner that watches the
 * connection and waits for DEVICE_DELETED asynchronously (common/qmp-wait.h)
 * or sends commands of its own on it. */
struct ferry_qmp;
FERRY_USB_API struct ferry_qmp *usb_qmp_base(struct ferry_usb_qmp *q);
/* chardev-add (unix socket client, reconnecting) + device_add usb-redir. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_qmp_redir_add(struct ferry_usb_qmp *q, const char *id, const char *sock_path,
                        char *err, size_t errlen);
/* The same on a connected socket we made (socketpair): the fd goes to QEMU
 * with getfd (SCM_RIGHTS on the QMP socket, named id), then chardev-add with
 * a socket backend on {"type":"fd","data":{"str":id}}.  Needs no socket() or
 * connect(): what a confined ferry-dm does.  fd stays the caller's. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_qmp_redir_add_fd(struct ferry_usb_qmp *q, const char *id, int fd,
                           char *err, size_t errlen);
/* For a connection kept open: its fd (to watch) and a non-blocking read of
 * what arrived (events kept for wait_deleted, the rest dropped); -EPIPE when
 * QEMU has gone. */
FERRY_USB_API int usb_qmp_fd(const struct ferry_usb_qmp *q);
FERRY_USB_API FERRY_MUST_CHECK int usb_qmp_drain(struct ferry_usb_qmp *q);
/* device_del, DEVICE_DELETED, chardev-remove. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_qmp_redir_del(struct ferry_usb_qmp *q, const char *id, char *err, size_t errlen);
/* Its two halves around an asynchronous wait: device_del; chardev-remove
 * (a chardev QEMU dropped with the device is fine). */
FERRY_USB_API FERRY_MUST_CHECK int
usb_qmp_redir_del_start(struct ferry_usb_qmp *q, const char *id, char *err, size_t errlen);
FERRY_USB_API FERRY_MUST_CHECK int
usb_qmp_redir_del_finish(struct ferry_usb_qmp *q, const char *id, char *err,
                               size_t errlen);

/* ---- TLS credentials for a share (share-tls.c, GnuTLS) ----------------------- */
struct ferry_usb_tls;

/*
 * X.509, laid out as QEMU's tls-creds-x509 with endpoint=server: DIR holds
 * ca-cert.pem (the CA that signed the clients' certificates), server-cert.pem
 * and server-key.pem, and optionally ca-crl.pem.  With verify_peer every
 * client must present a certificate that chains to ca-cert.pem (QEMU's
 * verify-peer=on, its default).  Files are read now.
 */
FERRY_USB_API FERRY_MUST_CHECK int
usb_tls_new_x509(const char *dir, bool verify_peer, struct ferry_usb_tls **out,
                 char *err, size_t errlen);
/*
 * Pre-shared keys as QEMU's tls-creds-psk: FILE (keys.psk in QEMU's
 * directory) has lines IDENTITY:HEXKEY; a client must know one of them.
 */
FERRY_USB_API FERRY_MUST_CHECK int
usb_tls_new_psk(const char *file, struct ferry_usb_tls **out, char *err, size_t errlen);
FERRY_USB_API void usb_tls_free(struct ferry_usb_tls *t);
/* "x509" or "psk", for log lines. */
FERRY_USB_API const char *usb_tls_kind(const struct ferry_usb_tls *t);

/* ---- one device shared on a listening socket (share.c) ----------------------- */
struct ferry_usb_share;

/* The usbredir hello a client must send first, at most (header, version
 * string, capabilities; usbredir 0.13 sends 12 + 64 + 4 bytes). */
#define FERRY_USB_SHARE_HELLO_MAX (12u + 64u + 256u)

/*
 * The first bytes a client sends, checked before the device leaves its host
 * driver: 1 when buf holds a whole usbredir hello of *need bytes, 0 when
 * more is needed (*need: how many in all, so far), -EPROTO when it is no
 * hello (what says why).  Peer data: fuzzed (tests/fuzz/fuzz-usb-share.c).
 */
FERRY_USB_API int usb_share_hello_check(const uint8_t *buf, size_t len, size_t *need,
                                        char *what, size_t whatlen);

struct ferry_usb_share_config {
    const char *name;           /* the device, for log lines */
    int listen_fd;              /* listening, non-blocking; the share's */
    int usbfs_fd;               /* /dev/bus/usb/BBB/DDD opened read-write; the share's */
    const struct ferry_usb_tls *tls;   /* NULL: plain; else stays the caller's */
    unsigned handshake_ms;      /* TLS handshake + usbredir hello, at most (0: 10 s) */
    unsigned idle_ms;           /* no byte either way for this long ends it (0: never) */
};

struct ferry_usb_share_ops {
    ferry_log_fn log;
    void *log_opaque;
    /* The device is gone (unplugged): nothing more to share. */
    void (*device_lost)(void *opaque);
};

/*
 * Serve one client at a time: a second connection is refused at once; a
 * client gets the device (taken from its host driver) only after its TLS
 * handshake and its usbredir hello; the device goes back when it leaves,
 * is dropped (handshake_ms, idle_ms) or misbehaves.  Every connection,
 * refusal and end is logged at info or warning with the peer's address.
 * Needs no new fd after start: fine in a sandbox.
 */
FERRY_USB_API FERRY_MUST_CHECK int
usb_share_new(struct ferry_usb_host *host, const struct ferry_usb_share_config *cfg,
              const struct ferry_usb_share_ops *ops, void *opaque,
              struct ferry_usb_share **out, char *err, size_t errlen);
FERRY_USB_API void usb_share_free(struct ferry_usb_share *s);
/* A client holds the device now (tests). */
FERRY_USB_API bool usb_share_serving(const struct ferry_usb_share *s);

/* ---- the USB service: what ferry-dm embeds ---------------------------------- */
struct ferry_usb_service;

struct ferry_usb_service_ops {
    ferry_log_fn log;
    /* libusb without enumeration or hotplug (LIBUSB_OPTION_NO_DEVICE_DISCOVERY,
     * process-wide): only fds passed by a broker, or opened before, are used */
    bool no_discovery;
    /* The QMP connection of a guest added with _add_guest ended (QEMU quit). */
    void (*guest_gone)(void *opaque, const char *guest);
    /* Optional, for an embedder that watches a lent QMP connection
     * (_add_guest_qmp) on its loop: after device_del of a usb-redir, wait
     * for its DEVICE_DELETED without blocking, and call done(done_opaque,
     * 0 or -errno) once, later, from the loop (QEMU answers at once unless
     * its guest is paused: then a blocking wait would freeze everything).
     * 0, or -errno: then the service waits itself, blocking (the default). */
    int (*wait_deleted)(void *opaque, const char *guest, const char *id,
                        void (*done)(void *done_opaque, int result), void *done_opaque);
    /* Optional: the embedder's word before device d goes to guest (its
     * QMP socket; a share's listen address), after the service's own
     * policy: the device-access policy and exclusive ownership
     * (policy/policy.h, policy/owner.h).  0, or -errno with err filled;
     * asked at every attach and replug, so keep it idempotent. */
    int (*grant)(void *opaque, const char *guest, const struct ferry_usb_devinfo *d,
                 char *err, size_t errlen);
    /* Optional: the assignment of d to guest has ended (detach, service
     * freed): what grant took may be given back. */
    void (*released)(void *opaque, const char *guest, const struct ferry_usb_devinfo *d);
};

/* Load libusb, libusbredirparser and libusbredirhost (dlopen, RTLD_GLOBAL)
 * if they are not yet: ferry-dm links none of them (usb/libs-dl.c) and
 * calls this before confinement when USB is wanted, before any other
 * function of this library.  A program that links them gets the same
 * libraries back: a no-op.  0, or -ENOENT with err naming the library and
 * dlerror's reason. */
FERRY_USB_API FERRY_MUST_CHECK int usb_libs_load(char *err, size_t errlen);

/* rundir holds the per-device unix sockets QEMU connects to; NULL when no
 * guest will be added (list, share). */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_new(struct event_base *base, const char *rundir,
                      const struct ferry_usb_service_ops *ops, void *opaque,
                      struct ferry_usb_service **out);
FERRY_USB_API void usb_service_free(struct ferry_usb_service *s);
FERRY_USB_API struct ferry_usb_host *usb_service_host(struct ferry_usb_service *s);
/* Connect to the guest's QMP socket now and keep the connection: every
 * channel to that guest is then a socketpair whose other end goes to QEMU
 * with getfd + chardev-add (usb_qmp_redir_add_fd), at attach and again
 * after each replug; no socket() or connect() later (confinement).  Without
 * it, a guest gets a listening socket per device that QEMU connects to. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_add_guest(struct ferry_usb_service *s, const char *guest,
                            char *err, size_t errlen);
/* The same on a QMP connection the embedder opened and keeps (ferry-dm
 * shares its one connection to QEMU between USB and PCI): the service uses
 * q but neither watches nor closes it; the embedder drains it
 * (usb_qmp_drain) and says usb_service_guest_lost when it ends.
 * q must outlive the service or be followed by guest_lost. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_add_guest_qmp(struct ferry_usb_service *s, const char *guest,
                                struct ferry_usb_qmp *q, char *err, size_t errlen);
FERRY_USB_API void usb_service_guest_lost(struct ferry_usb_service *s, const char *guest);
/* A new QEMU at the same QMP socket (a restarted remote QEMU): q, lent as
 * with _add_guest_qmp, replaces the lost connection, and the assignments
 * whose devices are present are plugged into it again.  -ENOENT if the
 * guest has no lent connection. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_guest_reconnect(struct ferry_usb_service *s, const char *guest,
                            struct ferry_usb_qmp *q, char *err, size_t errlen);
/* A guest is named by its QMP socket path.  Rules as usb_policy_new. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_set_policy(struct ferry_usb_service *s, const char *guest,
                             const char *rules, char *err, size_t errlen);
/* The [usb] group of a guest config:  qmp=PATH  policy=RULES
 * devices=SPEC;SPEC;...  (VID:PID[:SERIAL] or port path), attached now
 * when present and whenever they appear (service-config.c). */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_load_config(struct ferry_usb_service *s, struct _GKeyFile *kf,
                              char *err, size_t errlen);

/* ---- the [usb] group, read once (service-config.c) ---------------------------- */
/* What a guest config's [usb] group says, for every reader (ferry-dm's
 * companion, usb_service_load_config). */
struct ferry_usb_config {
    bool present;       /* the file has a [usb] group */
    char *qmp;          /* qmp=, or NULL */
    char *policy;       /* policy=, or NULL */
    char **devices;     /* devices=, each stripped, blank ones dropped; NULL-ended */
};
/* The keys of [usb] that usb_config_read() reads (NULL-terminated), for
 * programs that refuse unknown keys in their config files. */
FERRY_USB_API extern const char *const usb_config_keys[];
/* From a loaded key file: 0 (also without a [usb] group: present false). */
FERRY_USB_API int usb_config_read(struct _GKeyFile *kf, struct ferry_usb_config *c);
/* From a file (NULL, or one that does not load: present false; ferry-dm
 * has checked it already). */
FERRY_USB_API int usb_config_load(const char *file, struct ferry_usb_config *c);
FERRY_USB_API void usb_config_clear(struct ferry_usb_config *c);
/* What usb_service_load_config does with it, for the guest whose QMP
 * socket is guest (which may come from elsewhere than c->qmp): policy= set,
 * devices= assigned (a bus.addr is refused: it changes at every replug). */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_apply_config(struct ferry_usb_service *s, const char *guest,
                               const struct ferry_usb_config *c, char *err, size_t errlen);
/* Attach now (the device must be present and allowed); it stays assigned
 * and comes back after a replug until detached. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_attach(struct ferry_usb_service *s, const char *guest,
                         const char *device, char *err, size_t errlen);
/* Attach the device behind a usbfs fd a privileged broker opened and passed
 * (SCM_RIGHTS, see usb_fd_recv).  On success the fd is the service's
 * (closed when the assignment ends); on failure it stays the caller's.  It
 * serves one connection: after a replug the broker passes a new fd. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_attach_fd(struct ferry_usb_service *s, const char *guest, int fd,
                            char *err, size_t errlen);
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_detach(struct ferry_usb_service *s, const char *guest,
                         const char *device, char *err, size_t errlen);
/* The same, for a service with ops.wait_deleted: the host gets the device
 * back now; QEMU's side (DEVICE_DELETED, chardev-remove) may end later.
 * 1: done(opaque, 0 or -errno, message) will be called once, from the loop
 * (also with -ECANCELED if the service is freed first); 0: all done now;
 * -errno with err. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_detach_async(struct ferry_usb_service *s, const char *guest,
                               const char *device,
                               void (*done)(void *opaque, int result, const char *err),
                               void *opaque, char *err, size_t errlen);
/* The device of an assignment was unplugged: what libusb's hotplug says when
 * it runs here, and what a broker says for a ferry-dm without discovery
 * (confined).  The channel to the guest ends; the assignment stays, for the
 * broker's next fd (usb_service_attach_fd) or the next arrival. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_device_left(struct ferry_usb_service *s, const char *guest,
                              const char *device, char *err, size_t errlen);
/* Serve a device to whoever connects to `listen` (e.g. "0.0.0.0:4000"). */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_share(struct ferry_usb_service *s, const char *device,
                        const char *listen, char *err, size_t errlen);
/* Serve a device on a listening socket the caller made (lfd; the `ferry`
 * CLI creates it for a libvirt domain's QEMU, with the owner that QEMU runs
 * as): every connection gets the device, given back to its host driver
 * when the peer leaves, and the next connection (QEMU's chardev reconnects)
 * gets it again.  devfd >= 0: the device behind a broker's usbfs fd;
 * otherwise `device` (a spec) found and opened here.  where names it
 * (logs, detach, list).  On success lfd and devfd are the service's. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_serve_listener(struct ferry_usb_service *s, const char *where, int lfd,
                           const char *device, int devfd, char *err, size_t errlen);
/* The broker's new usbfs fd for the device served to where by
 * usb_service_serve_listener, after a replug (a ferry-dm without discovery):
 * the same device again, to the peer still connected or the next one.
 * usb_service_device_left(where, device) is its unplug.  devfd is the
 * service's on success only. */
FERRY_USB_API FERRY_MUST_CHECK int
usb_service_serve_listener_fd(struct ferry_usb_service *s, const char *where, int devfd,
                              char *err, size_t errlen);
/* The listener's device: plugged in, and a peer connected.  0 or -ENOENT. */
FERRY_USB_API int usb_service_listener_state(struct ferry_usb_service *s, const char *where,
                                             bool *present, bool *connected);
/* Does `device` (a spec) name a device assigned to where? */
FERRY_USB_API bool usb_service_assigned(struct ferry_usb_service *s, const char *where,
                                        const char *device);
/* JSON array: one object per host device with policy verdicts and where it
 * is attached; g_free() it. */
FERRY_USB_API char *usb_service_list_json(struct ferry_usb_service *s);
/* Number of assignments currently connected to a guest (tests). */
FERRY_USB_API unsigned usb_service_connected(struct ferry_usb_service *s);
/*
 * Handing the service to a successor process (ferry-dm's replace,
 * docs/usb.md): usb_service_quiesce takes no further request on any channel
 * and waits (blocking, at most timeout_ms, libusb handled meanwhile) until
 * every request taken is answered and the streams are stopped; 0, or
 * -errno with why (and every channel serves on): an unplug under way, a
 * broker's fd not served yet, a channel that cannot go yet or at all
 * (usb_redir_handover_ready: a usbredir filter, TLS).  usb_service_export
 * then appends the state and puts each assignment's fds in fds (*nfds of
 * them: a listening socket, a channel's socket and usbfs fd, a listener's
 * broker fd); usb_service_resume serves on when the handover fails.
 * usb_service_adopt (the successor, whose guests were added with the same
 * QMP paths and connections) makes the assignments, listeners and channels
 * again: a network share's peer keeps its connection, the next peer
 * connects to the successor.
 */
FERRY_USB_API int usb_service_quiesce(struct ferry_usb_service *s, int timeout_ms, char *why,
                                      size_t len);
FERRY_USB_API void usb_service_resume(struct ferry_usb_service *s);
FERRY_USB_API FERRY_MUST_CHECK int usb_service_export(struct ferry_usb_service *s,
                                                      GByteArray *state, int *fds,
                                                      unsigned max, unsigned *nfds, char *why,
                                                      size_t len);
FERRY_USB_API FERRY_MUST_CHECK int usb_service_adopt(struct ferry_usb_service *s,
                                                     const uint8_t *state, size_t len,
                                                     const int *fds, unsigned nfds, char *why,
                                                     size_t whylen);

#endif
