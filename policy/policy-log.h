/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Program side (common/log-glib.h): a struct ferry_policy_ops.decided that
 * logs every verdict with journal fields FERRY_GUEST, FERRY_DEVICE,
 * FERRY_VERDICT (allow, allow-forced, deny), FERRY_RULE, FERRY_PROTECTION.
 * opaque: the instance name or NULL. */
#ifndef FERRY_POLICY_LOG_H
#define FERRY_POLICY_LOG_H

#include "policy/policy.h"

void policy_log_verdict(void *opaque, const struct ferry_policy_verdict *v);
/* The same straight to the journal, not to stderr: for commands that
 * print the verdict themselves (the CLI); nothing without a journal. */
void policy_log_verdict_journal(void *opaque, const struct ferry_policy_verdict *v);

#endif
