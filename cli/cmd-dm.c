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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "cli/cmd.h"

#define DM_REPLY_MAX (4u << 20)

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
};

static void dm_usage(FILE *f)
{
    fprintf(f,
            "usage: ferry dm [-s SOCKET | GUEST] COMMAND [key=value...]\n"
            "\n"
            "Talks to a running ferry-dm over its control socket (GUEST means\n"
            "${FERRY_RUN_DIR:-/run/ferry}/GUEST/dm.sock).  Commands:\n"
            "  status                query-status: running or shut down, counters\n"
            "  devices               query-devices: devices, ranges, interrupts\n"
            "  types                 query-device-types\n"
            "  add TYPE [id=ID] [k=v...]   device_add (hot-pluggable types only)\n"
            "  del ID                device_del\n"
            "  powerdown             system_powerdown: press the ACPI power button\n"
            "  reset                 system_reset\n"
            "  quit                  detach ferry-dm from the guest\n"
            "  any other ferry-dm QMP command name, with key=value arguments\n");
}

/* One line from fd into line (NUL-terminated, without the newline). */
static int read_line(int fd, GString *line)
{
    char c;

    g_string_truncate(line, 0);
    for (;;) {
        ssize_t n = read(fd, &c, 1);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -ECONNRESET;
        if (c == '\n')
            return 0;
        if (line->len >= DM_REPLY_MAX)
            return -E2BIG;
        g_string_append_c(line, c);
    }
}

static int send_line(int fd, const char *s)
{
    size_t len = strlen(s);

    while (len) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        s += n;
        len -= (size_t)n;
    }
    return send(fd, "\n", 1, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/* Send one command, wait for its reply; *reply is the parsed object. */
static int exchange(int fd, const char *cmd, JsonNode **reply, const char *sock)
{
    GString *line = g_string_new(NULL);
    int rc = send_line(fd, cmd);

    if (rc == 0)
        rc = read_line(fd, line);
    if (rc < 0) {
        fprintf(stderr, "ferry dm: %s: %s\n", sock, strerror(-rc));
        g_string_free(line, TRUE);
        return rc;
    }
    *reply = json_from_string(line->str, NULL);
    if (!*reply || !JSON_NODE_HOLDS_OBJECT(*reply)) {
        fprintf(stderr, "ferry dm: %s: not a QMP reply: %.80s\n", sock, line->str);
        if (*reply)
            json_node_unref(*reply);
        g_string_free(line, TRUE);
        return -EPROTO;
    }
    g_string_free(line, TRUE);
    return 0;
}

int cmd_dm(int argc, char **argv)
{
    const char *sock = NULL, *command;
    char *sock_owned = NULL;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    JsonBuilder *b;
    JsonNode *reply = NULL;
    char *req;
    int i = 1, fd = -1, status = FERRY_EXIT_FAILURE;
    const char *positional = NULL;

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
        g_free(sock_owned);
        return FERRY_EXIT_USAGE;
    }
    command = argv[i++];
    for (size_t k = 0; k < G_N_ELEMENTS(aliases); k++) {
        if (!strcmp(command, aliases[k].alias)) {
            command = aliases[k].command;
            positional = aliases[k].positional;
            break;
        }
    }

    b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "execute");
    json_builder_add_string_value(b, command);
    json_builder_set_member_name(b, "arguments");
    json_builder_begin_object(b);
    if (positional) {
        if (i >= argc || strchr(argv[i], '=')) {
            fprintf(stderr, "ferry dm: %s needs a %s\n", command, positional);
            g_object_unref(b);
            g_free(sock_owned);
            return FERRY_EXIT_USAGE;
        }
        json_builder_set_member_name(b, positional);
        json_builder_add_string_value(b, argv[i++]);
    }
    for (; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');

        if (!eq || eq == argv[i]) {
            fprintf(stderr, "ferry dm: argument '%s' is not key=value\n", argv[i]);
            g_object_unref(b);
            g_free(sock_owned);
            return FERRY_EXIT_USAGE;
        }
        char *key = g_strndup(argv[i], (gsize)(eq - argv[i]));
        json_builder_set_member_name(b, key);
        json_builder_add_string_value(b, eq + 1);
        g_free(key);
    }
    json_builder_end_object(b);
    json_builder_end_object(b);
    JsonNode *root = json_builder_get_root(b);
    req = json_to_string(root, FALSE);
    json_node_unref(root);
    g_object_unref(b);

    if (strlen(sock) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "ferry dm: socket path too long: %s\n", sock);
        goto out;
    }
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "ferry dm: cannot connect to %s: %s (is ferry-dm running with "
                "--control?)\n", sock, strerror(errno));
        goto out;
    }
    GString *greeting = g_string_new(NULL);
    int rc = read_line(fd, greeting);
    bool qmp = rc == 0 && strstr(greeting->str, "\"QMP\"");
    g_string_free(greeting, TRUE);
    if (!qmp) {
        fprintf(stderr, "ferry dm: %s: no QMP greeting\n", sock);
        goto out;
    }
    if (exchange(fd, "{\"execute\":\"qmp_capabilities\"}", &reply, sock) < 0)
        goto out;
    json_node_unref(reply);
    reply = NULL;
    if (exchange(fd, req, &reply, sock) < 0)
        goto out;

    JsonObject *o = json_node_get_object(reply);
    if (json_object_has_member(o, "error")) {
        JsonNode *e = json_object_get_member(o, "error");
        const char *desc = JSON_NODE_HOLDS_OBJECT(e)
            ? json_object_get_string_member_with_default(json_node_get_object(e), "desc", "?")
            : "?";

        fprintf(stderr, "ferry dm: %s: %s\n", command, desc);
        goto out;
    }
    JsonNode *ret = json_object_get_member(o, "return");
    if (ret && !(JSON_NODE_HOLDS_OBJECT(ret) && json_object_get_size(json_node_get_object(ret)) == 0)) {
        JsonGenerator *g = json_generator_new();

        json_generator_set_pretty(g, TRUE);
        json_generator_set_root(g, ret);
        char *s = json_generator_to_data(g, NULL);
        printf("%s\n", s);
        g_free(s);
        g_object_unref(g);
    }
    status = FERRY_EXIT_OK;
out:
    if (reply)
        json_node_unref(reply);
    if (fd >= 0)
        close(fd);
    g_free(req);
    g_free(sock_owned);
    return status;
}
