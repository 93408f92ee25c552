// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dm_prewarm() covers what error paths ask of the libraries after
 * confinement: a child prewarms, confines itself with ferry-dm's base
 * filter in kill mode (keeping its user and the host's namespaces, so no
 * root is needed), then puts every errno into words with g_strerror (also
 * numbers no errno has, and from a second thread: glib caches the charset
 * per thread), converts from the locale's charset, makes jansson report
 * parse errors and builds objects (its hash seed).  Any file a library
 * still wanted to open would be a forbidden openat: the child would die of
 * SIGSYS with a line naming it.
 * run-confined-errors.py checks the same through ferry-dm's real paths.
 */
#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/json.h"
#include "devmodel/prewarm.h"
#include "sandbox/sandbox.h"

static size_t put_into_words(void)
{
    static const char *const bad_json[] = { "{", "{\"a\": }", "\xff\xfe", "[1, 2", "nul" };
    size_t sum = 0;
    const char *cs = NULL;
    gchar *u;

    for (int e = -2; e < 300; e++)
        sum += strlen(g_strerror(e));
    sum += strlen(g_strerror(100000));
    sum += strlen(strerror(ENOTTY));
    (void)g_get_charset(&cs);
    u = g_locale_to_utf8("Invalid argument", -1, NULL, NULL, NULL);
    sum += u ? strlen(u) : 0;
    g_free(u);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_json); i++) {
        char why[160];

        if (!ferry_json_parse(bad_json[i], strlen(bad_json[i]), why, sizeof(why)))
            sum += strlen(why);
    }
    /* objects: jansson's hash function wants its seed (getrandom or
     * /dev/urandom on first use) */
    {
        json_t *o = json_pack("{s:i, s:[s, f, b, n]}", "a", 1, "b", "\u00e9", 1.5, 1);
        char *s = ferry_json_dumps(o, true);

        sum += s ? strlen(s) : 0;
        free(s);
        json_decref(o);
    }
    return sum;
}

static gpointer thread_fn(gpointer data)
{
    *(size_t *)data = put_into_words();
    return NULL;
}

static int child(void)
{
    const struct ferry_syscall_list *lists[] = { &sandbox_syscalls_base, &sandbox_syscalls_sanitizer };
    struct ferry_sandbox_config cfg = {
        .user = "", .mode = FERRY_SECCOMP_KILL, .namespaces = false,
        .lists = lists, .nr_lists = sandbox_sanitized() ? 2 : 1,
        .log = NULL,
    };
    size_t in_thread = 0, here;
    GThread *t;

    dm_prewarm();
    if (sandbox_enter(&cfg) < 0) {
        fprintf(stderr, "cannot confine the child\n");
        return 3;
    }
    here = put_into_words();
    t = g_thread_new("words", thread_fn, &in_thread);
    g_thread_join(t);
    sandbox_exit(here && in_thread == here ? 0 : 4);
}

int main(void)
{
    int status;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0)
        _exit(child());
    if (waitpid(pid, &status, 0) < 0) {
        perror("waitpid");
        return 1;
    }
    if (WIFSIGNALED(status)) {
        printf("FAIL: the confined child died of signal %d%s\n", WTERMSIG(status),
               WTERMSIG(status) == SIGSYS ? " (a library opened a file after confinement: "
               "see the seccomp line above)" : "");
        return 1;
    }
    if (WEXITSTATUS(status) != 0) {
        printf("FAIL: the confined child exited with status %d\n", WEXITSTATUS(status));
        return 1;
    }
    printf("ok: after dm_prewarm, a confined process (kill mode) put every errno into "
           "words, in two threads, and used jansson (objects, parse errors)\n");
    return 0;
}
