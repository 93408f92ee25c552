/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small synchronous QMP client (QEMU Machine Protocol) on jansson
 * (common/json.h).
 *
 * It uses glib and jansson: programs link it, and so does libferry-usb
 * (which uses them anyway); the glib-free libraries do not.  One
 * connection to a QMP unix socket (QEMU started with
 * `-qmp unix:PATH,server=on,wait=off`):
 *
 *     struct ferry_qmp *q = ferry_qmp_new(5000);
 *     json_t *ret;
 *     if (ferry_qmp_connect(q, PATH) < 0)
 *         fprintf(stderr, "%s\n", ferry_qmp_error(q));
 *     if (ferry_qmp_execute(q, "query-pci", NULL, &ret) < 0)
 *         fprintf(stderr, "%s\n", ferry_qmp_error(q));  // "GenericError: ..."
 *     json_decref(ret);
 *     ferry_qmp_close(q);
 *
 * The connect call reads QEMU's greeting and negotiates capabilities
 * (`qmp_capabilities`).  Every call blocks for at most the timeout given at
 * connect.  Asynchronous events that arrive while waiting for a reply are
 * kept (up to FERRY_QMP_EVENTS_MAX) and can be waited for with
 * ferry_qmp_wait_event.  Replies larger than FERRY_QMP_LINE_MAX are refused
 * as a protocol error.  Not thread-safe: one connection per thread.
 *
 * A connection kept open for long (ferry-dm's, shared by USB and PCI) is
 * watched on an event loop through ferry_qmp_fd and emptied with
 * ferry_qmp_drain, which keeps the events for a later wait.  This is the
 * one QMP client of the project: libferry-usb's ferry_usb_qmp is a thin
 * layer on it.  DEVICE_DELETED is waited for through common/qmp-wait.h,
 * blocking or from a libevent loop.
 */
#ifndef FERRY_QMP_H
#define FERRY_QMP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/json.h"

#define FERRY_QMP_LINE_MAX   (4u << 20)  /* one JSON message */
#define FERRY_QMP_EVENTS_MAX 256
/* A QMP socket that accepts and does not greet within this is held by
 * another client (QEMU serves one per socket): said in seconds. */
#define FERRY_QMP_GREETING_MS 5000

struct ferry_qmp;

/* A client whose every wait lasts at most timeout_ms.  NULL on ENOMEM. */
struct ferry_qmp *ferry_qmp_new(int timeout_ms);
/* Connect, read the greeting, negotiate capabilities.  0 or -errno. */
int ferry_qmp_connect(struct ferry_qmp *q, const char *path);
/* The same on a connected socket (e.g. an inherited socketpair end, which q
 * then owns and closes, also on failure); name is for messages. */
int ferry_qmp_connect_fd(struct ferry_qmp *q, int fd, const char *name);
/*
 * A handover to another process (ferry-dm's replace): the bytes received
 * and not parsed yet (a partial message), and on the other side the same
 * connection taken as it is, with those bytes: no greeting is read and no
 * qmp_capabilities sent (QEMU negotiates once per connection and refuses a
 * second one).  Kept events stay with the old client.  0 or -EINVAL.
 */
const char *ferry_qmp_unread(const struct ferry_qmp *q, size_t *len);
int ferry_qmp_adopt(struct ferry_qmp *q, int fd, const void *unread, size_t len);
/* Disconnect and free (NULL is fine). */
void ferry_qmp_close(struct ferry_qmp *q);

/* Run `cmd` with `args` (a JSON object or NULL; not consumed).  On
 * success *ret (if non-NULL) gets the "return" member (caller json_decrefs).
 * QEMU's refusal gives -EREMOTEIO with "CLASS: desc" in ferry_qmp_error();
 * transport problems give other -errno. */
int ferry_qmp_execute(struct ferry_qmp *q, const char *cmd, json_t *args, json_t **ret);
/* The same, with fd passed in the command's first bytes (SCM_RIGHTS), as
 * QEMU's getfd wants it; fd stays the caller's. */
int ferry_qmp_execute_fd(struct ferry_qmp *q, const char *cmd, json_t *args, int fd,
                         json_t **ret);

/* The socket, to watch for input between commands. */
int ferry_qmp_fd(const struct ferry_qmp *q);
/* Read what has arrived without waiting: events are kept (the oldest
 * dropped beyond FERRY_QMP_EVENTS_MAX), anything else dropped.  0, -EPIPE
 * when QEMU closed the connection, other -errno. */
int ferry_qmp_drain(struct ferry_qmp *q);

/* Without waiting: take the oldest kept event named `name` (and, when
 * `device` is non-NULL, whose data.device or data.path equals it).  0, with
 * *data as for ferry_qmp_wait_event, or -ENOENT when none is kept. */
int ferry_qmp_take_event(struct ferry_qmp *q, const char *name, const char *device,
                         json_t **data);
/* fn(opaque) each time an event is kept: by ferry_qmp_drain, and by a
 * command or wait that read it on the way.  It may run inside those calls:
 * it must not use the connection (a loop owner schedules its look with
 * ferry_qmp_take_event for later).  NULL turns it off. */
void ferry_qmp_set_event_cb(struct ferry_qmp *q, void (*fn)(void *opaque), void *opaque);

/* Wait until an event named `name` arrives (or was already kept); when
 * `device` is non-NULL only one whose data.device or data.path equals it
 * counts.  *data gets its "data" member (caller json_decrefs) if non-NULL.
 * -ETIMEDOUT after timeout_ms. */
int ferry_qmp_wait_event(struct ferry_qmp *q, const char *name, const char *device,
                         int timeout_ms, json_t **data);

/* Where query-pci's reply `ret` puts the device whose qdev_id is `id`:
 * "BB:SS.F" into where (true), or false.  The reply is QEMU's, so it is
 * checked like peer input: members of the wrong type count as absent and
 * bridges are followed at most FERRY_QMP_PCI_DEPTH_MAX buses deep. */
#define FERRY_QMP_PCI_DEPTH_MAX 256
bool ferry_qmp_pci_find(json_t *ret, const char *id, char *where, size_t len);

/* The peer greeted as ferry-dm's control socket (version {"ferry": ...})
 * rather than as QEMU. */
bool ferry_qmp_peer_is_ferry_dm(const struct ferry_qmp *q);

/* Message of the last failure on this connection. */
const char *ferry_qmp_error(const struct ferry_qmp *q);
/* The same, for a message that names the socket itself: without the
 * "qmp: " prefix, and for QEMU's refusal (r == -EREMOTEIO) its desc without
 * the error class. */
const char *ferry_qmp_reason(const struct ferry_qmp *q, int r);

#endif
