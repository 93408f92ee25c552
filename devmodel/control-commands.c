// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm's control socket, the command side: the reply lines, the NUL
 * check of a command line, and the built-in commands (qmp_capabilities,
 * query-status, query-devices, query-device-types, device_add, device_del,
 * system_powerdown, system_wakeup, system_reset, quit).  The socket, its clients, fd passing,
 * deferred replies and client-follow are control.c's; see control.h for the
 * protocol and control-internal.h for what the two files share.
 */
#include "devmodel/control-internal.h"

#include <errno.h>
#include <string.h>

static char *to_line(JsonBuilder *b)
{
    JsonNode *root = json_builder_get_root(b);
    char *s = json_to_string(root, FALSE);

    json_node_unref(root);
    g_object_unref(b);
    return s;
}

static void add_id(JsonBuilder *b, JsonNode *id)
{
    if (!id)
        return;
    json_builder_set_member_name(b, "id");
    json_builder_add_value(b, json_node_copy(id));
}

char *dm_control_error(JsonNode *id, const char *cls, const char *fmt, ...)
{
    JsonBuilder *b = json_builder_new();
    va_list ap;
    char *desc;

    va_start(ap, fmt);
    desc = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "error");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "class");
    json_builder_add_string_value(b, cls);
    json_builder_set_member_name(b, "desc");
    json_builder_add_string_value(b, desc);
    json_builder_end_object(b);
    add_id(b, id);
    json_builder_end_object(b);
    g_free(desc);
    return to_line(b);
}

/* Starts {"return": and leaves the builder positioned for the value. */
static JsonBuilder *reply_begin(void)
{
    JsonBuilder *b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "return");
    return b;
}

static char *reply_end(JsonBuilder *b, JsonNode *id)
{
    add_id(b, id);
    json_builder_end_object(b);
    return to_line(b);
}

char *dm_control_reply_empty(JsonNode *id)
{
    JsonBuilder *b = reply_begin();

    json_builder_begin_object(b);
    json_builder_end_object(b);
    return reply_end(b, id);
}

static char *cmd_query_status(struct ferry_dm *dm, JsonNode *id)
{
    JsonBuilder *b = reply_begin();
    struct ferry_dm_stats st;

    dm_get_stats(dm, &st);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "status");
    json_builder_add_string_value(b, dm_status_name(dm_get_status(dm)));
    json_builder_set_member_name(b, "running");
    json_builder_add_boolean_value(b, dm_get_status(dm) == FERRY_DM_RUNNING);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, dm_name(dm));
    json_builder_set_member_name(b, "devices");
    json_builder_add_int_value(b, (gint64)dm_device_count(dm));
    json_builder_set_member_name(b, "ioreqs");
    json_builder_add_int_value(b, (gint64)st.ioreqs);
    json_builder_set_member_name(b, "unclaimed");
    json_builder_add_int_value(b, (gint64)st.unclaimed);
    json_builder_set_member_name(b, "bad");
    json_builder_add_int_value(b, (gint64)st.bad);
    json_builder_end_object(b);
    return reply_end(b, id);
}

static char *cmd_query_types(JsonNode *id)
{
    JsonBuilder *b = reply_begin();
    const struct ferry_dm_device_type *t;

    json_builder_begin_array(b);
    for (unsigned i = 0; (t = dm_device_type_nth(i)); i++) {
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, t->name);
        json_builder_set_member_name(b, "desc");
        json_builder_add_string_value(b, t->desc ? t->desc : "");
        json_builder_set_member_name(b, "hotplug");
        json_builder_add_boolean_value(b, t->hotplug);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    return reply_end(b, id);
}

static char *cmd_device_add(struct ferry_dm *dm, JsonObject *args, JsonNode *id)
{
    struct ferry_dm_opts *opts;
    const char *driver = NULL, *dev_id = NULL;
    GList *members;
    char *err = NULL;
    int rc;

    if (!args || !json_object_has_member(args, "driver") ||
        JSON_NODE_TYPE(json_object_get_member(args, "driver")) != JSON_NODE_VALUE ||
        json_node_get_value_type(json_object_get_member(args, "driver")) != G_TYPE_STRING)
        return dm_control_error(id, "GenericError", "device_add: 'driver' (a string) is required");
    driver = json_object_get_string_member(args, "driver");
    opts = dm_opts_new();
    if (!opts)
        return dm_control_error(id, "GenericError", "device_add: out of memory");
    members = json_object_get_members(args);
    for (GList *l = members; l && !err; l = l->next) {
        const char *key = l->data;
        JsonNode *n = json_object_get_member(args, key);
        char *val;

        if (strcmp(key, "driver") == 0)
            continue;
        if (JSON_NODE_TYPE(n) != JSON_NODE_VALUE) {
            err = g_strdup_printf("device_add: '%s' must be a string, number or boolean", key);
            break;
        }
        if (strcmp(key, "id") == 0) {
            dev_id = json_node_get_string(n);
            if (!dev_id)
                err = g_strdup("device_add: 'id' must be a string");
            continue;
        }
        switch (json_node_get_value_type(n)) {
        case G_TYPE_STRING: val = g_strdup(json_node_get_string(n)); break;
        case G_TYPE_INT64: val = g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(n)); break;
        case G_TYPE_BOOLEAN: val = g_strdup(json_node_get_boolean(n) ? "on" : "off"); break;
        default:
            err = g_strdup_printf("device_add: '%s' has an unsupported type", key);
            continue;
        }
        if (dm_opts_set(opts, key, val) < 0)
            err = g_strdup_printf("device_add: option '%s' is too long or too many", key);
        g_free(val);
    }
    g_list_free(members);
    if (!err) {
        rc = dm_device_add(dm, driver, dev_id, opts, NULL);
        if (rc < 0) {
            const char *why = dm_device_add_error(dm);

            err = g_strdup_printf("device_add %s: %s%s%s", driver,
                                  rc == -ENOENT ? "no such device type"
                                  : rc == -EBUSY ? "this device type cannot be hot-plugged"
                                  : rc == -EEXIST ? "id or address already in use"
                                  : rc == -EPERM ? "not possible in a confined ferry-dm (its "
                                                   "seccomp filter was made for the devices "
                                                   "configured at start-up)"
                                                  : g_strerror(-rc),
                                  why[0] ? ": " : "", why);
        }
    }
    dm_opts_free(opts);
    if (err) {
        char *r = dm_control_error(id, "GenericError", "%s", err);

        g_free(err);
        return r;
    }
    return dm_control_reply_empty(id);
}

static char *cmd_device_del(struct ferry_dm *dm, JsonObject *args, JsonNode *id)
{
    const char *dev_id;
    int rc;

    if (!args || !json_object_has_member(args, "id") ||
        JSON_NODE_TYPE(json_object_get_member(args, "id")) != JSON_NODE_VALUE ||
        !(dev_id = json_object_get_string_member(args, "id")))
        return dm_control_error(id, "GenericError", "device_del: 'id' (a string) is required");
    rc = dm_device_remove(dm, dev_id);
    if (rc == -ENOENT)
        return dm_control_error(id, "DeviceNotFound", "device_del: no device '%s'", dev_id);
    if (rc == -EBUSY)
        return dm_control_error(id, "GenericError", "device_del: '%s' cannot be hot-unplugged",
                                dev_id);
    if (rc < 0)
        return dm_control_error(id, "GenericError", "device_del %s: %s", dev_id, g_strerror(-rc));
    return dm_control_reply_empty(id);
}

char *dm_control_reply_error(JsonNode *id, const char *desc)
{
    return dm_control_error(id, "GenericError", "%s", desc);
}

char *dm_control_reply(JsonNode *id, JsonNode *ret)
{
    JsonBuilder *b = reply_begin();

    if (ret) {
        json_builder_add_value(b, ret);
    } else {
        json_builder_begin_object(b);
        json_builder_end_object(b);
    }
    return reply_end(b, id);
}

/*
 * A NUL in the line, raw or as \u0000 in a string: json-glib hands strings
 * out as C strings, so "query-status\u0000x" would read as query-status and
 * an id "a\u0000b" as "a".  Escapes are skipped whole, so an escaped
 * backslash followed by "u0000" is no NUL.
 */
bool dm_control_line_has_nul(const char *line, size_t len)
{
    if (memchr(line, 0, len))
        return true;
    for (size_t i = 0; i + 1 < len; i++) {
        if (line[i] != '\\')
            continue;
        if (line[i + 1] == 'u' && i + 5 < len && !memcmp(line + i + 2, "0000", 4))
            return true;
        i++;                /* the escaped character */
    }
    return false;
}

char *dm_control_builtin(struct ferry_dm *dm, const char *cmd, JsonObject *args, JsonNode *id,
                         bool *quit)
{
    char *r;

    if (strcmp(cmd, "qmp_capabilities") == 0) {
        r = dm_control_reply_empty(id);
    } else if (strcmp(cmd, "query-status") == 0) {
        r = cmd_query_status(dm, id);
    } else if (strcmp(cmd, "query-devices") == 0) {
        JsonBuilder *b = reply_begin();

        dm_query_devices(dm, b);
        r = reply_end(b, id);
    } else if (strcmp(cmd, "query-device-types") == 0) {
        r = cmd_query_types(id);
    } else if (strcmp(cmd, "device_add") == 0) {
        r = cmd_device_add(dm, args, id);
    } else if (strcmp(cmd, "device_del") == 0) {
        r = cmd_device_del(dm, args, id);
    } else if (strcmp(cmd, "system_powerdown") == 0) {
        r = dm_powerdown(dm) < 0
                ? dm_control_error(id, "GenericError", "system_powerdown: no power button "
                                   "(no acpi-pm device)")
                : dm_control_reply_empty(id);
    } else if (strcmp(cmd, "system_wakeup") == 0) {
        int rc = dm_wakeup(dm, FERRY_DM_WAKE_OTHER);

        r = rc == -EALREADY
                ? dm_control_error(id, "GenericError", "Unable to wake up: guest is not in "
                                   "suspended state")
                : rc < 0 ? dm_control_error(id, "GenericError", "system_wakeup: %s", strerror(-rc))
                         : dm_control_reply_empty(id);
    } else if (strcmp(cmd, "system_reset") == 0) {
        dm_request_shutdown(dm, IOREQ_SHUTDOWN_REBOOT, 0);
        r = dm_control_reply_empty(id);
    } else if (strcmp(cmd, "quit") == 0) {
        *quit = true;
        r = dm_control_reply_empty(id);
    } else {
        r = NULL;       /* not a built-in */
    }
    return r;
}
