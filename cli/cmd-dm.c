// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry dm: talk to a running ferry-dm over its control socket.
 *
 *   ferry dm [-s SOCKET | GUEST] COMMAND [ARGS...]
 *
 * GUEST names the socket ${FERRY_RUN_DIR:-/run/ferry}/GUEST/dm.sock (where
 * contrib/ferry-dm@.service puts it).  COMMAND is a QMP command of ferry-dm
 * or one of the short forms below; ARGS are key=value pairs that become
 * the command's "arguments" (values stay strings; ferry-dm parses them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cli/cmd.h"
#include "common/qmp.h"

#define DM_TIMEOUT_MS 10000

static const struct {
    const char *alias, *command, *positional;
} aliases[] = {
    { "status", "query-status", NULL },
    { "devices", "query-devices", NULL },
    { "types", "query-device-types", NULL },
    { "add", "device_add", "driver" },
    { "del", "device_del", "id" },
    { "powerdown", "system_powerdown", NULL },
    { "reset", "system_reset", NULL },
    { "wakeup", "system_wakeup", NULL },
    { "replace", "x-replace", NULL },
};

/* x-replace waits for a successor: up to three steps of ferry-dm's 10 s each. */
#define DM_REPLACE_TIMEOUT_MS 40000

static void dm_usage(FILE *f)
{
    fprintf(f,
            "usage: ferry dm [-s SOCKET | GUEST] COMMAND [key=value...]\n"
            "\n"
            "Talks to a running ferry-dm over its control socket (GUEST means\n"
            "${FERRY_RUN_DIR:-/run/ferry}/GUEST/dm.sock).  Commands:\n"
            "  status                query-status: running, suspended or shut down, counters\n"
            "  devices               query-devices: devices, ranges, interrupts\n"
            "  types                 query-device-types\n"
            "  add TYPE [id=ID] [k=v...]   device_add (hot-pluggable types only)\n"
            "  del ID                device_del\n"
            "  powerdown             system_powerdown: press the ACPI power button\n"
            "  reset                 system_reset\n"
            "  wakeup                system_wakeup: wake a guest suspended to RAM (S3)\n"
            "  replace [--binary PATH]  x-replace: start a new ferry-dm (PATH must be the\n"
            "                        one ferry-dm was started to use: --successor), hand it\n"
            "                        the guest's devices and state; the guest runs on\n"
            "  quit                  detach ferry-dm from the guest\n"
            "  any other ferry-dm QMP command name, with key=value arguments\n");
}

int cmd_dm(int argc, char **argv)
{
    const char *sock = NULL, *command, *positional = NULL;
    char *sock_owned = NULL;
    struct ferry_qmp *q = NULL;
    json_t *args = NULL, *ret = NULL;
    int i = 1, rc = 0, status = FERRY_EXIT_USAGE;

    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        dm_usage(stdout);
        return FERRY_EXIT_OK;
    }
    if (i + 1 < argc && !strcmp(argv[i], "-s")) {
        sock = argv[i + 1];
        i += 2;
    } else if (i < argc) {
        const char *dir = getenv("FERRY_RUN_DIR");

        sock = sock_owned = g_build_filename(dir && *dir ? dir : "/run/ferry", argv[i],
                                             "dm.sock", NULL);
        i++;
    }
    if (!sock || i >= argc) {
        dm_usage(stderr);
        goto out;
    }
    command = argv[i++];
    for (size_t k = 0; k < G_N_ELEMENTS(aliases); k++) {
        if (!strcmp(command, aliases[k].alias)) {
            command = aliases[k].command;
            positional = aliases[k].positional;
            break;
        }
    }

    /* The arguments: the alias's positional one, then key=value pairs (strings). */
    args = json_object();
    if (positional) {
        if (i >= argc || strchr(argv[i], '=')) {
            fprintf(stderr, "ferry dm: %s needs a %s\n", command, positional);
            goto out;
        }
        json_object_set_new(args, positional, ferry_json_str(argv[i++]));
    }
    for (; i < argc; i++) {
        if (!strcmp(command, "x-replace") && !strcmp(argv[i], "--binary") && i + 1 < argc) {
            json_object_set_new(args, "binary", ferry_json_str(argv[++i]));
            continue;
        }
        const char *eq = strchr(argv[i], '=');

        if (!eq || eq == argv[i]) {
            fprintf(stderr, "ferry dm: argument '%s' is not key=value\n", argv[i]);
            goto out;
        }
        char *key = g_strndup(argv[i], (gsize)(eq - argv[i]));
        if (json_object_set_new(args, key, ferry_json_str(eq + 1)) < 0) {
            fprintf(stderr, "ferry dm: argument '%s': the key is not UTF-8\n", argv[i]);
            g_free(key);
            goto out;
        }
        g_free(key);
    }

    status = FERRY_EXIT_FAILURE;
    q = ferry_qmp_new(strcmp(command, "x-replace") ? DM_TIMEOUT_MS : DM_REPLACE_TIMEOUT_MS);
    if (!q || (rc = ferry_qmp_connect(q, sock)) < 0) {
        fprintf(stderr, "ferry dm: cannot talk to %s: %s%s\n", sock,
                q ? ferry_qmp_error(q) : "out of memory",
                q && rc == -EBUSY ? "" : " (is ferry-dm running with --control?)");
        goto out;
    }
    if (ferry_qmp_execute(q, command, args, &ret) < 0) {
        fprintf(stderr, "ferry dm: %s: %s\n", command, ferry_qmp_error(q));
        goto out;
    }
    if (ret && !(json_is_object(ret) && json_object_size(ret) == 0)) {
        char *s = ferry_json_dumps(ret, true);

        printf("%s\n", s ? s : "null");
        free(s);
    }
    status = FERRY_EXIT_OK;
out:
    json_decref(ret);
    json_decref(args);
    ferry_qmp_close(q);
    g_free(sock_owned);
    return status;
}
