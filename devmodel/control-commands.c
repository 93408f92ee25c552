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

/* The reply line of o (consumed), compact as on the wire. */
static char *to_line(json_t *o)
{
    char *s = ferry_json_dumps(o, false);

    json_decref(o);
    return s ? s : g_strdup("{\"error\": {\"class\": \"GenericError\", "
                            "\"desc\": \"out of memory\"}}");
}

static void add_id(json_t *o, json_t *id)
{
    if (id)
        json_object_set(o, "id", id);
}

char *dm_control_error(json_t *id, const char *cls, const char *fmt, ...)
{
    json_t *o = json_object(), *e = json_object();
    va_list ap;
    char *desc;

    va_start(ap, fmt);
    desc = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    json_object_set_new(e, "class", ferry_json_str(cls));
    json_object_set_new(e, "desc", ferry_json_str(desc));
    json_object_set_new(o, "error", e);
    add_id(o, id);
    g_free(desc);
    return to_line(o);
}

/* {"return": ret (consumed; NULL: {}), "id": id} */
static char *reply_line(json_t *id, json_t *ret)
{
    json_t *o = json_object();

    json_object_set_new(o, "return", ret ? ret : json_object());
    add_id(o, id);
    return to_line(o);
}

char *dm_control_reply_empty(json_t *id)
{
    return reply_line(id, NULL);
}

static char *cmd_query_status(struct ferry_dm *dm, json_t *id)
{
    json_t *b = json_object();
    struct ferry_dm_stats st;

    dm_get_stats(dm, &st);
    json_object_set_new(b, "status", ferry_json_str(dm_status_name(dm_get_status(dm))));
    json_object_set_new(b, "running", json_boolean(dm_get_status(dm) == FERRY_DM_RUNNING));
    json_object_set_new(b, "name", ferry_json_str(dm_name(dm)));
    json_object_set_new(b, "devices", json_integer((json_int_t)dm_device_count(dm)));
    json_object_set_new(b, "ioreqs", json_integer((json_int_t)st.ioreqs));
    json_object_set_new(b, "unclaimed", json_integer((json_int_t)st.unclaimed));
    json_object_set_new(b, "bad", json_integer((json_int_t)st.bad));
    return reply_line(id, b);
}

static char *cmd_query_types(json_t *id)
{
    json_t *list = json_array();
    const struct ferry_dm_device_type *t;

    for (unsigned i = 0; (t = dm_device_type_nth(i)); i++) {
        json_t *o = json_object();

        json_object_set_new(o, "name", ferry_json_str(t->name));
        json_object_set_new(o, "desc", ferry_json_str(t->desc ? t->desc : ""));
        json_object_set_new(o, "hotplug", json_boolean(t->hotplug));
        json_array_append_new(list, o);
    }
    return reply_line(id, list);
}

static char *cmd_device_add(struct ferry_dm *dm, json_t *args, json_t *id)
{
    struct ferry_dm_opts *opts;
    const char *driver = NULL, *dev_id = NULL, *key;
    json_t *n;
    char *err = NULL;
    int rc;

    driver = ferry_json_string(args, "driver", NULL);
    if (!driver)
        return dm_control_error(id, "GenericError", "device_add: 'driver' (a string) is required");
    opts = dm_opts_new();
    if (!opts)
        return dm_control_error(id, "GenericError", "device_add: out of memory");
    json_object_foreach(args, key, n) {
        char *val;

        if (err)
            break;
        if (strcmp(key, "driver") == 0)
            continue;
        if (json_is_object(n) || json_is_array(n) || json_is_null(n)) {
            err = g_strdup_printf("device_add: '%s' must be a string, number or boolean", key);
            break;
        }
        if (strcmp(key, "id") == 0) {
            dev_id = json_string_value(n);
            if (!dev_id)
                err = g_strdup("device_add: 'id' must be a string");
            continue;
        }
        switch (json_typeof(n)) {
        case JSON_STRING: val = g_strdup(json_string_value(n)); break;
        case JSON_INTEGER:
            val = g_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(n));
            break;
        case JSON_TRUE: val = g_strdup("on"); break;
        case JSON_FALSE: val = g_strdup("off"); break;
        default:
            err = g_strdup_printf("device_add: '%s' has an unsupported type", key);
            continue;
        }
        if (dm_opts_set(opts, key, val) < 0)
            err = g_strdup_printf("device_add: option '%s' is too long or too many", key);
        g_free(val);
    }
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

static char *cmd_device_del(struct ferry_dm *dm, json_t *args, json_t *id)
{
    const char *dev_id;
    int rc;

    if (!(dev_id = ferry_json_string(args, "id", NULL)))
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

char *dm_control_reply_error(json_t *id, const char *desc)
{
    return dm_control_error(id, "GenericError", "%s", desc);
}

char *dm_control_reply(json_t *id, json_t *ret)
{
    return reply_line(id, ret);
}

/*
 * A NUL in the line, raw or as \u0000 in a string: strings are handed out
 * as C strings, so "query-status\u0000x" would read as query-status and an
 * id "a\u0000b" as "a" (jansson refuses \u0000 too; this check says so in
 * words of its own).  Escapes are skipped whole, so an escaped backslash
 * followed by "u0000" is no NUL.
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

char *dm_control_builtin(struct ferry_dm *dm, const char *cmd, json_t *args, json_t *id,
                         bool *quit)
{
    char *r;

    if (strcmp(cmd, "qmp_capabilities") == 0) {
        r = dm_control_reply_empty(id);
    } else if (strcmp(cmd, "query-status") == 0) {
        r = cmd_query_status(dm, id);
    } else if (strcmp(cmd, "query-devices") == 0) {
        r = reply_line(id, dm_query_devices(dm));
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
