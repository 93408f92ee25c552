// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Library state initialised before confinement (see prewarm.h).
 *
 * How the list was made: every control command and error path of
 * tests/security/run-confined-errors.py, in each start mode, with ferry-dm
 * under strace -f, looking at what it opened or called for the first time
 * after the filter went on; and the library sources behind each call that
 * error paths reach (g_strerror, jansson's hash seed, libusb's wrap of a
 * handed-over fd).  Already before confinement, elsewhere:
 * tzset() (sandbox.c: localtime() would read /etc/localtime), the user's
 * passwd entry (sandbox.c: NSS), libusb_init without device discovery
 * (usb/host.c), the QMP connection and the control socket.
 */
#include "devmodel/prewarm.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "policy/owner.h"

/* errno values Linux defines: 1 (EPERM) .. EHWPOISON (133) */
#define PREWARM_ERRNO_MAX (EHWPOISON + 1)

void dm_prewarm(void)
{
    size_t sink = 0;
    static const char doc[] = "{\"x\": [1.5, \"\\u00e9\", true, null]}";
    json_t *v;
    char *s, why[160];

    /*
     * glib's charset: g_get_charset() reads charset.alias from glib's
     * libdir the first time and keeps the table for the process (each
     * thread caches only the answer).  g_strerror, g_locale_to_utf8,
     * g_printerr and GOption's string options ask it; before this, only a
     * string option on the command line happened to load it, so
     * `--ioreq-fd=N --control=PATH` (ferry run) and --qmp PATH did not.
     */
    (void)g_get_charset(NULL);

    /*
     * g_strerror: glib converts each errno's message to UTF-8 the first
     * time and caches it for good.  ferry-dm runs in the "C" locale (it
     * never calls setlocale), whose charset is ASCII, so the conversion is
     * an iconv_open, and glibc reads its gconv configuration
     * (gconv-modules.cache) on the first one.  Every message now, so that
     * error paths after confinement (control-commands.c's device_add and device_del,
     * dm-qmp.c, dm-vfio.c, usb/service-serve.c, usb/service-guest.c,
     * usb/redir.c, usb/policy.c) only look them up; any other number would
     * still find iconv ready.
     * glib declares g_strerror G_GNUC_CONST: a call whose result is unused
     * may be dropped by the compiler, hence the sum that an empty asm uses.
     */
    for (int e = 0; e < PREWARM_ERRNO_MAX; e++)
        sink += strlen(g_strerror(e));
    /* glibc's own strerror (ferry-dm's and libusb's messages): static strings in "C" */
    sink += strlen(strerror(EINVAL));
    __asm__ __volatile__("" : : "r"(sink));     /* the sum is used: the calls stay */

    /*
     * jansson seeds its hash function on the first object it makes, from
     * /dev/urandom (open, read, close; the time and pid if that fails):
     * before confinement, once for the process.  Nothing else in jansson
     * asks the system for anything but memory: its parse errors are
     * snprintf into a buffer, numbers go through strtod/snprintf in the
     * "C" locale.  One parse error and one round trip, so that the paths
     * the control socket's first lines take are not new after the filter.
     */
    ferry_json_seed();
    if (!(v = ferry_json_parse(doc, strlen(doc) - 2, why, sizeof(why))))   /* cut short */
        sink += strlen(why);
    json_decref(v);
    v = ferry_json_parse(doc, strlen(doc), why, sizeof(why));
    if (v && (s = ferry_json_dumps(v, false))) {
        sink += strlen(s);
        free(s);
    }
    json_decref(v);
    __asm__ __volatile__("" : : "r"(sink));

    /*
     * Ownership claims handed to this ferry-dm (a broker's, a predecessor's)
     * name it by pid and start time (policy_owner_adopt): the start time is
     * in /proc/self/stat, which a confined ferry-dm cannot open.
     */
    (void)policy_owner_self_start();
}
