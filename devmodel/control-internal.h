/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to ferry-dm's control socket: what control.c (the transport) and
 * control-commands.c (the built-in commands, reply lines and the NUL check)
 * share.
 */
#ifndef FERRY_DM_CONTROL_INTERNAL_H
#define FERRY_DM_CONTROL_INTERNAL_H

#include "devmodel/control.h"

/* An error reply line {"error": {"class": cls, "desc": ...}, "id": id} (g_free it). */
char *dm_control_error(json_t *id, const char *cls, const char *fmt, ...) FERRY_PRINTF(3, 4);
/* The reply line {"return": {}, "id": id} (g_free it). */
char *dm_control_reply_empty(json_t *id);
/*
 * A NUL in the line, raw or as \u0000 in a string (C strings would cut the
 * string there): such a line is refused, with the command's id.
 */
bool dm_control_line_has_nul(const char *line, size_t len);
/*
 * Run cmd if it is a built-in command (control.h's list, client-follow
 * aside) and return its reply line; NULL if cmd is not one.  *quit is set
 * for "quit".
 */
char *dm_control_builtin(struct ferry_dm *dm, const char *cmd, json_t *args, json_t *id,
                         bool *quit);

#endif
