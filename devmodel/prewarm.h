/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the libraries ferry-dm uses set up lazily, on their first call, done
 * at start-up instead (devmodel/prewarm.c lists each item and why).
 *
 * A confined ferry-dm has an empty root and a filter without open/openat:
 * a library that reads a file the first time it is asked something (glib's
 * charset table, glibc's iconv configuration, ...) kills ferry-dm with
 * SIGSYS if that first time comes after sandbox_enter(), typically on
 * an error path nobody took before.  ferry-dm calls dm_prewarm() once,
 * before it forks anything and before it confines itself.
 */
#ifndef FERRY_DEVMODEL_PREWARM_H
#define FERRY_DEVMODEL_PREWARM_H

void dm_prewarm(void);

#endif /* FERRY_DEVMODEL_PREWARM_H */
