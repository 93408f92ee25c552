/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm's control socket: a unix stream socket speaking QMP-style JSON,
 * one object per line.  On connect the server sends a greeting
 *   {"QMP": {"version": {"ferry": "0.1.0"}, "capabilities": []}}
 * then answers each {"execute": CMD, "arguments": {...}, "id": ANY} with
 *   {"return": ..., "id": ANY}  or
 *   {"error": {"class": "GenericError"|"CommandNotFound", "desc": "..."}, "id": ANY}
 * Commands: qmp_capabilities, query-status, query-devices,
 * query-device-types, device_add (driver, id, device options), device_del
 * (id), system_powerdown, system_reset, quit, and client-follow (this
 * connection stays open for long: no idle bound, and it does not take one of
 * the FERRY_DM_CONTROL_CLIENTS_MAX interactive slots).  A client beyond the
 * limits gets an error line before its connection is closed, and so does an
 * interactive client idle for FERRY_DM_CONTROL_IDLE_MS.
 */
#ifndef FERRY_DM_CONTROL_H
#define FERRY_DM_CONTROL_H

#include "devmodel/dm.h"

#define FERRY_DM_CONTROL_LINE_MAX     65536   /* one command, newline included */
/* Interactive clients at once; one more is told so and closed. */
#define FERRY_DM_CONTROL_CLIENTS_MAX  8
/*
 * An interactive client that sends no complete command (or leaves its
 * replies unread) this long after it connected or was last answered is
 * told and closed, so silent clients cannot hold the slots for good.  30 s
 * is far beyond what a program or a person typing into socat needs between
 * commands, and short enough that a stuck client frees its slot soon.
 */
#define FERRY_DM_CONTROL_IDLE_MS      30000
/* Clients that said client-follow (`ferry usb attach --follow`): they wait
 * for hotplug events for hours, have no idle bound and their own limit. */
#define FERRY_DM_CONTROL_FOLLOWERS_MAX 4
#define FERRY_DM_CONTROL_BACKLOG      16      /* connections the kernel queues before accept */
#define FERRY_DM_CONTROL_FDS_MAX      4       /* SCM_RIGHTS fds kept per client */
#define FERRY_DM_CONTROL_OUT_MAX      (256 * 1024)  /* unread replies before input pauses */
/* Deferred replies (dm_control_defer) waiting at a time: per client
 * (its later commands wait for the reply, so one), and for all clients. */
#define FERRY_DM_CONTROL_PENDING_CLIENT_MAX 1
#define FERRY_DM_CONTROL_PENDING_MAX        4

struct ferry_dm_control;

struct ferry_dm_control_ops {
    /* "quit": stop the device model once the reply is out. */
    void (*quit)(void *opaque);
};

FERRY_MUST_CHECK int dm_control_open(struct ferry_dm *dm, const char *path,
                                           const struct ferry_dm_control_ops *ops,
                                           void *opaque, struct ferry_dm_control **out);
void dm_control_close(struct ferry_dm_control *c);
/*
 * Replacing ferry-dm: the listening socket (to hand over), and a control
 * socket made from a predecessor's listening fd (taken over, also on
 * error) instead of a new one at path.
 */
int dm_control_listen_fd(const struct ferry_dm_control *c);
FERRY_MUST_CHECK int dm_control_adopt(struct ferry_dm *dm, const char *path, int listen_fd,
                                      const struct ferry_dm_control_ops *ops, void *opaque,
                                      struct ferry_dm_control **out);
/* The idle bound of interactive clients (FERRY_DM_CONTROL_IDLE_MS; tests
 * shorten it). */
unsigned dm_control_idle_timeout(const struct ferry_dm_control *c);
void dm_control_set_idle_timeout(struct ferry_dm_control *c, unsigned ms);

/*
 * Execute one command line and return the reply line (without newline;
 * g_free it).  *quit is set when the command was "quit".  Used by the
 * socket and by the unit tests.
 */
char *dm_control_execute(struct ferry_dm *dm, const char *line, size_t len,
                               bool *quit);

/* The command being handled (valid during the handler's call only). */
struct ferry_dm_control_req;

/*
 * More commands (the USB service's): called for a command the control
 * socket does not know, with its arguments (may be NULL) and id.  *fd is the
 * oldest fd the client passed with SCM_RIGHTS and has not used yet (or -1);
 * set it to -1 to keep it, otherwise it is closed after the call.  Return
 * the reply line (dm_control_reply*), or NULL for "not mine", or
 * FERRY_DM_CONTROL_DEFERRED after dm_control_defer(req) succeeded.
 */
typedef char *(*ferry_dm_control_handler_fn)(void *opaque, struct ferry_dm_control_req *req,
                                             const char *cmd, json_t *args, json_t *id,
                                             int *fd);
void dm_control_set_handler(struct ferry_dm_control *c, ferry_dm_control_handler_fn fn,
                                  void *opaque);
/* The next fd the client passed after *fd (a command that takes two: a
 * device's fd and its ownership claim's lock), now the caller's; -1 if none. */
int dm_control_take_fd(struct ferry_dm_control_req *req);
/*
 * Send reply_line (and what was queued before it) to the client now,
 * blocking: for a handler whose process ends right after (x-replace), so
 * that the loop never runs again.  The handler then returns
 * FERRY_DM_CONTROL_DEFERRED after dm_control_defer(req).
 */
int dm_control_reply_now(struct ferry_dm_control_req *req, const char *line);
/* Reply lines for handlers: {"return": ret or {}} (ret consumed), or a GenericError. */
char *dm_control_reply(json_t *id, json_t *ret);
char *dm_control_reply_error(json_t *id, const char *desc);

/*
 * Deferred replies: a handler whose answer depends on a peer (the guest
 * letting go of a device) says "the reply comes later" and returns at once,
 * so the loop goes on serving everything else:
 *
 *     struct ferry_dm_control_pending *p = dm_control_defer(req);
 *     if (!p)
 *         return dm_control_reply_error(id, "...: too many commands waiting");
 *     ... start the work; keep p ...
 *     return FERRY_DM_CONTROL_DEFERRED;
 *   and later, from any loop callback, exactly once:
 *     dm_control_complete(p, dm_control_reply(dm_control_pending_id(p),
 *                                                         NULL));
 *
 * The client's later commands wait until then (replies stay in the order of
 * the commands, as in QMP: its input is not read meanwhile); other clients
 * are served.  The pending owns a copy of the id; a client that disconnects
 * meanwhile, or the control socket closing, leaves the pending valid and its
 * completion is dropped.  NULL with errno EBUSY beyond
 * FERRY_DM_CONTROL_PENDING_CLIENT_MAX / FERRY_DM_CONTROL_PENDING_MAX, or
 * ENOTSUP when the command came through dm_control_execute (no client
 * to answer later).
 */
struct ferry_dm_control_pending;
extern const char dm_control_deferred_mark[1];
#define FERRY_DM_CONTROL_DEFERRED ((char *)(uintptr_t)dm_control_deferred_mark)

struct ferry_dm_control_pending *dm_control_defer(struct ferry_dm_control_req *req);
/* The id of the deferred command (NULL if it had none); the pending's. */
json_t *dm_control_pending_id(const struct ferry_dm_control_pending *p);
/* Send reply_line (consumed; NULL: an internal error reply) and free p. */
void dm_control_complete(struct ferry_dm_control_pending *p, char *reply_line);
/*
 * The same, but sent now, blocking (as dm_control_reply_now): for a
 * deferred x-replace, whose process ends right after.  -ENOTCONN when the
 * client has gone.
 */
int dm_control_complete_now(struct ferry_dm_control_pending *p, char *reply_line);
/* Deferred replies not yet completed, for all clients (tests, status). */
unsigned dm_control_pending_count(const struct ferry_dm_control *c);

/* The greeting line (g_free it). */
char *dm_control_greeting(void);

#endif
