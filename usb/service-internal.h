/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The USB service's state, shared by its files and not installed:
 * service.c (the assignment state machine: guests, assignments, hotplug,
 * attach, detach, share, listeners), service-serve.c (one assignment's
 * channels: plug into QEMU, accept a peer, unplug), service-guest.c (the
 * guest's QMP connection), service-config.c (the [usb] group of a guest
 * config, GKeyFile) and service-json.c (query-usb's JSON rendering).
 */
#ifndef FERRY_USB_SERVICE_INTERNAL_H
#define FERRY_USB_SERVICE_INTERNAL_H

#include <stdbool.h>

#include <event2/event.h>
#include <glib.h>
#include <libusb.h>

#include "usb/ferry-usb.h"

#define QMP_TIMEOUT_MS 10000

struct guest {
    char *qmp;
    struct ferry_usb_policy *policy;
    struct ferry_usb_service *svc;
    /* kept open (usb_service_add_guest): channels are socketpairs
     * handed to QEMU with getfd, no socket of ours for QEMU to connect to */
    struct ferry_usb_qmp *q;
    struct event *qev;
    bool lent;          /* q is the embedder's (add_guest_qmp): not ours to close */
};

struct assign {
    struct ferry_usb_service *svc;
    struct guest *guest;          /* NULL for a network share */
    char *share_addr;
    struct ferry_usb_spec spec;   /* identity: VID:PID:SERIAL or port */
    char ident[160];
    char id[32];                  /* QEMU chardev and device id */
    char sock_path[108];
    int lfd;
    struct event *accept_ev;
    bool accepting;
    bool present;
    struct ferry_usb_devinfo dev;
    struct ferry_usb_redir *redir;
    unsigned base_id, gen;
    bool plugged;                   /* QEMU has chardev+device a->id */
    bool stalled;                   /* QEMU ended the channel: wait for a replug */
    libusb_device_handle *wrapped;  /* from a broker's fd, until served */
    bool fd_mode;
    int owned_fd;                   /* that fd, closed after the handle */
    bool rewrap;                    /* a listener's passed fd: wrapped again for each
                                       connection (usb_service_serve_listener) */
    bool keep;                      /* usb_service_serve_listener: a replug goes to the
                                       connected peer on the same connection */
    struct unplug *unplug;          /* its last channel still leaving QEMU */
    bool granted;                   /* ops.grant said yes once: ops.released at the end */
};

struct ferry_usb_service {
    struct event_base *base;
    struct ferry_usb_service_ops ops;
    void *opaque;
    char *rundir;
    struct ferry_usb_host *host;
    struct ferry_usb_policy *default_policy;
    bool default_set;             /* set by usb_service_set_policy, not the built-in one */
    GPtrArray *guests;            /* struct guest * */
    GPtrArray *assigns;           /* struct assign * */
    unsigned next_id;
    GList *unplugs;               /* struct unplug *, waiting (ops.wait_deleted) */
    bool freeing;                 /* no more waiting on the embedder's loop */
};

/* A usb-redir leaving QEMU: device_del sent, DEVICE_DELETED awaited through
 * ops.wait_deleted, then chardev-remove.  It outlives the service (the
 * embedder calls unplug_done once, maybe after usb_service_free). */
struct unplug {
    struct ferry_usb_service *svc;  /* NULL once the service is freed */
    struct guest *guest;            /* the service's, valid while svc is */
    struct assign *a;               /* NULL once the assignment has ended */
    char id[32];
    char ident[160];
    void (*done)(void *opaque, int result, const char *err);
    void *done_opaque;
};

#define SLOG(s, lvl, ...) ferry_logf((s)->ops.log, (s)->opaque, (lvl), __VA_ARGS__)

const struct ferry_usb_policy *usb_service_guest_policy(struct ferry_usb_service *s,
                                                        struct guest *g);
/* Where an assignment goes: its guest's QMP socket, or its share address. */
const char *usb_service_assign_where(const struct assign *a);
/* Assign the devices of guest's config (spec text as written, in order;
 * blank ones skipped): each identity not assigned yet is bound to guest,
 * served whenever present.  A bus.addr is refused (it changes at every
 * replug).  0 or -errno with err. */
int usb_service_assign_devices(struct ferry_usb_service *s, const char *guest,
                               char *const *devices, char *err, size_t errlen);

/* service.c */
/* The guest of that QMP socket, made on first use. */
struct guest *usb_service_guest_get(struct ferry_usb_service *s, const char *qmp);
/* 0 when policy lets g have d, else -EPERM with why. */
int usb_service_policy_check(struct ferry_usb_service *s, struct guest *g,
                             const struct ferry_usb_devinfo *d, char *why, size_t len);

/* service-serve.c */
/* Channels are socketpairs handed to QEMU (the guest's QMP is kept open). */
bool usb_service_assign_fd_mode(const struct assign *a);
/* Want a channel now?  Plug into QEMU, or watch or stop watching the listener. */
void usb_service_assign_update_accept(struct assign *a);
/* End the usbredir endpoint, if any. */
void usb_service_assign_stop(struct assign *a);
/* usb-redir a->id out of QEMU: 1 when done is called later, else 0 or -errno. */
int usb_service_assign_unplug_start(struct assign *a, void (*done)(void *, int, const char *),
                                    void *done_opaque, char *err, size_t errlen);
/* Take a plugged a->id out of QEMU, logging a failure. */
void usb_service_assign_unplug_qemu(struct assign *a);
/* A new channel into QEMU; 0 or -errno with err. */
int usb_service_assign_plug(struct assign *a, char *err, size_t errlen);
/* The callbacks of an endpoint serving a (a peer accepted, a channel handed over). */
void usb_service_assign_redir_ops(struct assign *a, struct ferry_usb_redir_ops *rops);
/* Event callback of an assignment's listening socket (arg: the assignment). */
void usb_service_on_accept(evutil_socket_t lfd, short what, void *arg);
/* a's usbredir endpoint has ended (its ops.ended). */
void usb_service_assign_redir_ended(struct assign *a, enum ferry_usb_redir_end why);
/* Ends a, releases its device, closes its sockets and fds, frees it. */
void usb_service_assign_free(struct assign *a);

#endif
