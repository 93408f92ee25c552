// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Not a benchmark: the baseline processes bench/dm-footprint measures in the
 * same run and prints its ratio against.
 *
 * dm-footprint's baselines: a process that links what ferry-dm links (the
 * build adds -Wl,--no-as-needed, so every library is loaded and relocated
 * as in ferry-dm) and then only sleeps in a libevent loop, as an idle
 * ferry-dm does.  Its memory is the libraries' and the C runtime's; what
 * ferry-dm has above it is Ferry's own.
 *
 *   dm-footprint-idle [json]
 *
 * json: first use json-glib once the way ferry-dm's prewarm does (parse,
 * build, generate), so that its GTypes exist as in ferry-dm.  Built twice:
 * dm-footprint-idle (ferry-dm's libraries) and dm-footprint-idle-nojson
 * (the same without json-glib, so without its GIO/GObject chain: what a
 * JSON library without that chain would leave), and
 * dm-footprint-idle-jansson (that variant with jansson, a C JSON library
 * depending on libc only, linked and, with `json`, used once: the figure
 * a swap would give).  Prints "ready" once idle;
 * ends when stdin closes.
 */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#if defined(FOOTPRINT_JANSSON)
#include <jansson.h>
#elif !defined(FOOTPRINT_NO_JSON)
#include <json-glib/json-glib.h>
#endif

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    char buf[64];

    if (read(fd, buf, sizeof(buf)) <= 0)
        event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    struct event_base *b = event_base_new();
    struct event *ev;

#if defined(FOOTPRINT_JANSSON)
    if (argc > 1 && !strcmp(argv[1], "json")) {
        json_error_t e;
        json_t *v = json_loads("{\"x\": [1.5, \"\\u00e9\", true, null]}", 0, &e);
        json_t *o = json_pack("{s:i}", "x", 1);

        free(json_dumps(v, JSON_INDENT(2)));
        free(json_dumps(o, 0));
        json_decref(v);
        json_decref(o);
    }
#elif !defined(FOOTPRINT_NO_JSON)
    if (argc > 1 && !strcmp(argv[1], "json")) {
        JsonParser *p = json_parser_new();
        JsonBuilder *jb = json_builder_new();
        JsonGenerator *g = json_generator_new();
        JsonNode *root;

        if (json_parser_load_from_data(p, "{\"x\": [1.5, \"\\u00e9\", true, null]}", -1, NULL))
            g_free(json_to_string(json_parser_get_root(p), TRUE));
        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "x");
        json_builder_add_int_value(jb, 1);
        json_builder_end_object(jb);
        root = json_builder_get_root(jb);
        json_generator_set_root(g, root);
        g_free(json_generator_to_data(g, NULL));
        json_node_unref(root);
        g_object_unref(g);
        g_object_unref(jb);
        g_object_unref(p);
    }
#else
    (void)argc;
    (void)argv;
#endif
    if (!b)
        return 1;
    ev = event_new(b, 0, EV_READ | EV_PERSIST, on_stdin, b);
    event_add(ev, NULL);
    printf("ready\n");
    fflush(stdout);
    event_base_dispatch(b);
    event_free(ev);
    event_base_free(b);
    return 0;
}
