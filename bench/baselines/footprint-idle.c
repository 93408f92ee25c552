// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Not a benchmark: the baseline process bench/dm-footprint measures in the
 * same run and prints its ratio against.
 *
 * dm-footprint's baseline: a process that links what ferry-dm links (the
 * build adds -Wl,--no-as-needed, so every library is loaded and relocated
 * as in ferry-dm) and then only sleeps in a libevent loop, as an idle
 * ferry-dm does.  Its memory is the libraries' and the C runtime's; what
 * ferry-dm has above it is Ferry's own.
 *
 *   dm-footprint-idle [json]
 *
 * json: first use jansson once the way ferry-dm's prewarm does (seed,
 * parse, build, generate), so that its state exists as in ferry-dm.
 * Prints "ready" once idle; ends when stdin closes.
 */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

    if (argc > 1 && !strcmp(argv[1], "json")) {
        json_error_t e;
        json_t *v, *o;

        json_object_seed(0);
        v = json_loads("{\"x\": [1.5, \"\\u00e9\", true, null]}", 0, &e);
        o = json_pack("{s:i}", "x", 1);
        free(json_dumps(v, JSON_INDENT(2)));
        free(json_dumps(o, JSON_COMPACT));
        json_decref(v);
        json_decref(o);
    }
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
