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

/* The greeting line (g_free it). */
char *ferry_dm_control_greeting(void);

#endif
