// SPDX-License-Identifier: GPL-2.0-or-later
#include "common/cpus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cpu_number(const char *p, char **end, long *v)
{
    if (*p < '0' || *p > '9')
        return -EINVAL;
    errno = 0;
    *v = strtol(p, end, 10);
    return errno ? -EINVAL : 0;
}

int ferry_cpus_parse(const char *s, cpu_set_t *set, char *why, size_t why_len)
{
    long online = sysconf(_SC_NPROCESSORS_CONF);
    const char *p = s;

    CPU_ZERO(set);
    if (!s || !*s) {
        snprintf(why, why_len, "empty CPU list");
        return -EINVAL;
    }
    for (;;) {
        long a, b;
        char *end;
        if (cpu_number(p, &end, &a) < 0) {
            snprintf(why, why_len, "'%s': expected a CPU number at '%s'", s, p);
            return -EINVAL;
        }
        b = a;
        if (*end == '-') {
            if (cpu_number(end + 1, &end, &b) < 0) {
                snprintf(why, why_len, "'%s': expected a CPU number after '-'", s);
                return -EINVAL;
            }
            if (b < a) {
                snprintf(why, why_len, "'%s': range %ld-%ld ends before it starts", s, a, b);
                return -EINVAL;
            }
        }
        if (b >= CPU_SETSIZE || (online > 0 && b >= online)) {
            snprintf(why, why_len, "'%s': CPU %ld does not exist (this machine has %ld)", s, b,
                     online);
            return -EINVAL;
        }
        for (long c = a; c <= b; c++)
            CPU_SET((int)c, set);
        if (*end == '\0')
            return 0;
        if (*end != ',') {
            snprintf(why, why_len, "'%s': unexpected '%c' (write 0,2-3)", s, *end);
            return -EINVAL;
        }
        p = end + 1;
    }
}

void ferry_cpus_format(const cpu_set_t *set, char *buf, size_t len)
{
    size_t at = 0;

    if (len)
        buf[0] = '\0';
    for (int c = 0; c < CPU_SETSIZE && at < len; c++) {
        if (!CPU_ISSET(c, set))
            continue;
        int last = c;
        while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, set))
            last++;
        int n = last > c ? snprintf(buf + at, len - at, "%s%d-%d", at ? "," : "", c, last)
                         : snprintf(buf + at, len - at, "%s%d", at ? "," : "", c);
        if (n < 0)
            break;
        at += (size_t)n;
        c = last;
    }
    if (len && !buf[0])
        snprintf(buf, len, "none");
}

int ferry_cpus_nth(const cpu_set_t *set, unsigned n)
{
    int count = CPU_COUNT(set);

    if (count == 0)
        return -1;
    n %= (unsigned)count;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, set) && n-- == 0)
            return c;
    return -1;
}
