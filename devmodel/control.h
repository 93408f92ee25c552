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
 * (id), system_powerdown, system_reset, quit.
 */
#ifndef FERRY_DM_CONTROL_H
#define FERRY_DM_CONTROL_H

#include "devmodel/dm.h"

#define FERRY_DM_CONTROL_LINE_MAX     65536   /* one command, newline included */
#define FERRY_DM_CONTROL_CLIENTS_MAX  8
#define FERRY_DM_CONTROL_FDS_MAX      4       /* SCM_RIGHTS fds kept per client */
#define FERRY_DM_CONTROL_OUT_MAX      (256 * 1024)  /* unread replies before input pauses */

struct ferry_dm_control;

struct ferry_dm_control_ops {
    /* "quit": stop the device model once the reply is out. */
    void (*quit)(void *opaque);
};

FERRY_MUST_CHECK int ferry_dm_control_open(struct ferry_dm *dm, const char *path,
                                           const struct ferry_dm_control_ops *ops,
                                           void *opaque, struct ferry_dm_control **out);
void ferry_dm_control_close(struct ferry_dm_control *c);

/*
 * Execute one command line and return the reply line (without newline;
 * g_free it).  *quit is set when the command was "quit".  Used by the
 * socket and by the unit tests.
 */
char *ferry_dm_control_execute(struct ferry_dm *dm, const char *line, size_t len,
                               bool *quit);

/*
 * More commands (the USB service's): called for a command the control
 * socket does not know, with its arguments (may be NULL) and id.  *fd is the
 * oldest fd the client passed with SCM_RIGHTS and has not used yet (or -1);
 * set it to -1 to keep it, otherwise it is closed after the call.  Return
 * the reply line (ferry_dm_control_reply*), or NULL for "not mine".
 */
typedef char *(*ferry_dm_control_handler_fn)(void *opaque, const char *cmd, JsonObject *args,
                                             JsonNode *id, int *fd);
void ferry_dm_control_set_handler(struct ferry_dm_control *c, ferry_dm_control_handler_fn fn,
                                  void *opaque);
/* Reply lines for handlers: {"return": ret or {}} (ret consumed), or a GenericError. */
char *ferry_dm_control_reply(JsonNode *id, JsonNode *ret);
char *ferry_dm_control_reply_error(JsonNode *id, const char *desc);

/* The greeting line (g_free it). */
char *ferry_dm_control_greeting(void);

#endif
