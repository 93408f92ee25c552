// SPDX-License-Identifier: GPL-2.0-or-later
/* Program side: every verdict to the log with its journal fields. */
#include <glib.h>
#include <stdio.h>

#include "common/log-glib.h"
#include "policy/policy-log.h"

static const char *verdict_word(const struct ferry_policy_verdict *v)
{
    return v->allowed ? (v->forced ? "allow-forced" : "allow") : "deny";
}

void policy_log_verdict(void *opaque, const struct ferry_policy_verdict *v)
{
    const GLogField kv[] = {
        { "FERRY_GUEST", v->guest, -1 }, { "FERRY_DEVICE", v->device, -1 },
        { "FERRY_VERDICT", verdict_word(v), -1 }, { "FERRY_RULE", v->rule, -1 },
        { "FERRY_PROTECTION", v->protection, -1 },
    };
    char msg[1024];

    snprintf(msg, sizeof(msg), "policy: guest=%s device=%s verdict=%s rule=%s: %s", v->guest,
             v->device, verdict_word(v), v->rule, v->reason);
    /* a forced override of the host's protection is always worth a warning */
    ferry_log_fields(v->forced || !v->allowed ? FERRY_LOG_WARNING : FERRY_LOG_INFO, opaque, kv,
                     G_N_ELEMENTS(kv), msg);
}

void policy_log_verdict_journal(void *opaque, const struct ferry_policy_verdict *v)
{
    char msg[1024], prio[4];
    GLogField f[] = {
        { "MESSAGE", msg, -1 }, { "PRIORITY", prio, -1 }, { "SYSLOG_IDENTIFIER", "ferry", -1 },
        { "FERRY_COMPONENT", "ferry", -1 }, { "FERRY_GUEST", v->guest, -1 },
        { "FERRY_DEVICE", v->device, -1 }, { "FERRY_VERDICT", verdict_word(v), -1 },
        { "FERRY_RULE", v->rule, -1 }, { "FERRY_PROTECTION", v->protection, -1 },
    };

    snprintf(prio, sizeof(prio), "%d", v->forced || !v->allowed ? 4 : 6);
    snprintf(msg, sizeof(msg), "ferry: policy: guest=%s device=%s verdict=%s rule=%s: %s",
             v->guest, v->device, verdict_word(v), v->rule, v->reason);
    /* no journal (a container, a test): the command's own message says it */
    (void)g_log_writer_journald(v->forced || !v->allowed ? G_LOG_LEVEL_WARNING
                                                          : G_LOG_LEVEL_INFO,
                                f, G_N_ELEMENTS(f), NULL);
}
