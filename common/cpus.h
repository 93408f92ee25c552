/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CPU lists as people write them ("0", "0-3", "0,2-3"), for the programs'
 * placement options (ferry-hv --cpus/--dm-cpus, ferry-dm --cpus and the
 * config key cpus).
 */
#ifndef FERRY_COMMON_CPUS_H
#define FERRY_COMMON_CPUS_H

#include <sched.h>
#include <stddef.h>

/*
 * Parse s into set.  0, or -EINVAL with a reason in why: empty, not a
 * number, a range that ends before it starts, a CPU at or above CPU_SETSIZE,
 * or a CPU this machine does not have online.
 */
int ferry_cpus_parse(const char *s, cpu_set_t *set, char *why, size_t why_len);
/* The CPUs of set as a list ("0-1", "0,2-3"), or "none". */
void ferry_cpus_format(const cpu_set_t *set, char *buf, size_t len);
/* The n-th CPU of set (n taken modulo its size), or -1 when set is empty. */
int ferry_cpus_nth(const cpu_set_t *set, unsigned n);

#endif
