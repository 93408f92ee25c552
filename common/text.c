// SPDX-License-Identifier: GPL-2.0-or-later
/* See text.h. */
#include "common/text.h"

#include <string.h>

#include <glib.h>

char *ferry_text_quote_len(const char *s, size_t len, size_t max)
{
    GString *out = g_string_sized_new(len < max ? len : max);
    size_t i = 0;

    while (i < len && i < max) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x80) {
            gunichar u = g_utf8_get_char_validated(s + i, (gssize)(len - i));

            if (u != (gunichar)-1 && u != (gunichar)-2 && g_unichar_isprint(u)) {
                size_t n = (size_t)(g_utf8_next_char(s + i) - (s + i));

                g_string_append_len(out, s + i, (gssize)n);
                i += n;
                continue;
            }
            g_string_append_printf(out, "\\x%02x", c);
        } else if (c == '\\') {
            g_string_append(out, "\\\\");
        } else if (c == '\n') {
            g_string_append(out, "\\n");
        } else if (c == '\t') {
            g_string_append(out, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            g_string_append_printf(out, "\\x%02x", c);
        } else {
            g_string_append_c(out, (char)c);
        }
        i++;
    }
    if (i < len)
        g_string_append(out, "...");
    return g_string_free(out, FALSE);
}

char *ferry_text_quote(const char *s, size_t max)
{
    return ferry_text_quote_len(s ? s : "", s ? strlen(s) : 0, max);
}
