/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Exclusive device ownership across Ferry processes (libferry-policy-owner).
 *
 * One device, one guest: whoever is about to hand a device to a guest (the
 * root broker `ferry usb attach` / `ferry pci prepare|attach`, an unconfined
 * ferry-dm, `ferry usb share`) claims it first; a claim for another guest is
 * refused with a message naming the holder.
 *
 * State: one file per device, RUNDIR/owners/KIND/ID (RUNDIR: the rundir
 * argument, else $FERRY_RUN_DIR, else /run/ferry), holding the owner's
 * description as "key=value" lines (guest, program, pid, start, since).  The
 * file carries an open-file-description lock (fcntl F_OFD_SETLK, write lock)
 * while a handle is open: it dies with the last fd of the process holding it
 * (also when that fd was passed on with SCM_RIGHTS), so a crash frees it.
 * The description names the process that serves the device (pid and its
 * start time from /proc/PID/stat), which may be another than the claimant (a
 * broker claims for the ferry-dm it passes an fd to, pid from SO_PEERCRED).
 * An owner is alive while the lock is held or that process still runs; a
 * description whose lock is free and whose process has gone is stale and
 * taken over (the claim reports it, for the log).
 *
 *   struct ferry_policy_owner *o;
 *   struct ferry_policy_owner_info held;
 *   r = policy_owner_claim(NULL, "usb", "046d:c52b:SER", "vm1", "ferry-dm",
 *                          getpid(), &o, &held, err, sizeof(err));
 *     0          claimed; keep o while serving the device.  held.stale:
 *                a dead owner's description was taken over (held names it)
 *     -EBUSY     another guest holds it; held names it, err says so
 *     -EALREADY  this guest holds it already, through another live process
 *                (held names it); o is NULL.  Fine for a broker + ferry-dm.
 *     -errno     cannot claim (err: which file and why)
 *   policy_owner_release(o);    detach: description removed, lock dropped
 *   policy_owner_detach(o);     drop the lock and the handle, keep the
 *                               description (owner = the pid it names:
 *                               a broker claiming for a ferry-dm)
 *   policy_owner_drop(NULL, "usb", id, "vm1")   remove the description if
 *                               vm1 holds it (a broker after a detach)
 *   policy_owner_query(NULL, "pci", "0000:03:00.0", &info)
 *     1 held (info filled), 0 free (info.stale if a stale description is
 *     there), -errno
 *   policy_owner_list(NULL, "usb", cb, opaque)   every live description
 *
 * KIND: "usb" or "pci" (any [a-z0-9]+).  ID: PCI "dddd:bb:dd.f"; USB the
 * device's identity (usb_identity: "vid:pid:serial", else its port path
 * "1-2.3").  IDs are escaped for the file name (%XX for anything but
 * [A-Za-z0-9:._-]).  Not for confined processes: they open no files; their
 * broker claims for them.
 */
#ifndef FERRY_POLICY_OWNER_H
#define FERRY_POLICY_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/ferry-log.h"

#define FERRY_POLICY_API __attribute__((visibility("default")))

#define FERRY_POLICY_GUEST_MAX   128
#define FERRY_POLICY_PROGRAM_MAX 64

struct ferry_policy_owner;

struct ferry_policy_owner_info {
    char kind[16];
    char id[160];
    char guest[FERRY_POLICY_GUEST_MAX];
    char program[FERRY_POLICY_PROGRAM_MAX];
    long pid;                       /* 0 unknown */
    unsigned long long start;       /* /proc/PID/stat starttime; 0 unknown */
    char since[32];                 /* UTC, "2026-12-06T16:20:00Z" */
    bool locked;                    /* a process holds the lock */
    bool alive;                     /* the process it names runs */
    bool stale;                     /* a description whose owner has gone */
};

/* The owner text for messages: "guest vm1 (ferry-dm pid 1234)". */
FERRY_POLICY_API void policy_owner_describe(const struct ferry_policy_owner_info *i,
                                            char *buf, size_t len);

FERRY_POLICY_API FERRY_MUST_CHECK int
policy_owner_claim(const char *rundir, const char *kind, const char *id, const char *guest,
                   const char *program, pid_t pid, struct ferry_policy_owner **out,
                   struct ferry_policy_owner_info *held, char *err, size_t errlen);
FERRY_POLICY_API void policy_owner_release(struct ferry_policy_owner *o);
FERRY_POLICY_API void policy_owner_detach(struct ferry_policy_owner *o);
/* The lock's fd (to pass with SCM_RIGHTS: the lock lives on in the receiver). */
FERRY_POLICY_API int policy_owner_fd(const struct ferry_policy_owner *o);
FERRY_POLICY_API const char *policy_owner_path(const struct ferry_policy_owner *o);
/* A claim handed over by another process (a broker's, or a replaced
 * ferry-dm's): its lock fd, passed with SCM_RIGHTS, still holds the lock (an
 * open-file-description lock), and its description's path.  The description
 * names this process from then on (pid, and the start time
 * policy_owner_self_start() read: a confined process calls that before its
 * confinement, as it can open no /proc file after).  fd taken on success;
 * 0 or -errno. */
FERRY_POLICY_API int policy_owner_adopt(int fd, const char *path,
                                        struct ferry_policy_owner **out);
/* This process's start time (/proc/self/stat), read once per process. */
FERRY_POLICY_API unsigned long long policy_owner_self_start(void);
FERRY_POLICY_API int
policy_owner_drop(const char *rundir, const char *kind, const char *id, const char *guest);
FERRY_POLICY_API FERRY_MUST_CHECK int
policy_owner_query(const char *rundir, const char *kind, const char *id,
                   struct ferry_policy_owner_info *info);
FERRY_POLICY_API int policy_owner_list(const char *rundir, const char *kind,
                                       void (*cb)(void *opaque,
                                                  const struct ferry_policy_owner_info *i),
                                       void *opaque);
/* Does process pid with that start time (0: any) run?  (For callers that
 * record owners themselves.)  proc_root NULL: "/proc". */
FERRY_POLICY_API bool policy_owner_pid_alive(const char *proc_root, long pid,
                                             unsigned long long start);
/* The starttime field of /proc/PID/stat, 0 if unreadable. */
FERRY_POLICY_API unsigned long long policy_owner_pid_start(const char *proc_root, long pid);

#endif
