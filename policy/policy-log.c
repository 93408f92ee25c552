// SPDX-License-Identifier: GPL-2.0-or-later
/* Program side: every verdict to the log with its journal fields. */
#include "common/log-glib.h"
#include "policy/policy-log.h"

void policy_log_verdict(void *opaque, const struct ferry_policy_verdict *v)
{
    const char *verdict = v->allowed ? (v->forced ? "allow-forced" : "allow") : "deny";
    const char *const kv[] = {
        "FERRY_GUEST", v->guest, "FERRY_DEVICE", v->device, "FERRY_VERDICT", verdict,
        "FERRY_RULE", v->rule, "FERRY_PROTECTION", v->protection, NULL,
    };

    /* a forced override of the host's protection is always worth a warning */
    ferry_log_fields(v->forced || !v->allowed ? FERRY_LOG_WARNING : FERRY_LOG_INFO,
                     opaque, kv, "policy: guest=%s device=%s verdict=%s rule=%s: %s", v->guest,
                     v->device, verdict, v->rule, v->reason);
}
