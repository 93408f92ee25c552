/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Replacing ferry-dm under a running guest (docs/ferry-dm.md, "Replacing
 * ferry-dm").  The running ferry-dm (the predecessor) starts its successor
 * through a launcher forked before confinement (sandbox/launcher.h: the
 * confined process never execs), with its own command line plus
 * --take-over=3, and talks to it over the launcher's socket pair
 * (SOCK_SEQPACKET, fd 3 in the successor):
 *
 *   succ -> pred  STARTED  it has exec'd and warmed up (until then the
 *                          predecessor serves as usual: dm_replace_begin, and
 *                          the control command's reply is deferred)
 *   pred -> succ  FDS      what holds still while the guest runs: the ioreq
 *                          registration (ioreq_server_handover) and guest
 *                          RAM's regions, the fd roles; SCM_RIGHTS: ioreq
 *                          socket, shared pages, doorbells, guest RAM, the
 *                          listening control socket, the log, the QMP
 *                          connection, the chardevs' fds, devices' own (a
 *                          QEMU-hosted device's process).  The predecessor
 *                          serves on; the router lets vCPUs wait past its
 *                          timeout from here (IOREQ_MSG_HANDOVER BEGIN).
 *   succ -> pred  PREPARED it has adopted them (using none yet), added its
 *                          devices from the same config and confined itself
 *   pred -> succ  FREEZE   the predecessor has stopped serving: the
 *                          registration's sequence number, the state's
 *                          length and what may change any time, with its
 *                          fds: irqfds and MSI routes (dm-handover.h),
 *                          companion mode's USB channels
 *   pred -> succ  STATE    the handover stream (dm-state.h), in chunks, right
 *                          behind FREEZE
 *   succ -> pred  RESULT   0: it serves (claims repeated, state restored,
 *                          requests left waiting answered); or -errno and why
 *
 * The guest's pause is FREEZE to the successor's first answer: one
 * wake-up of the successor, one round trip to the router (claims and
 * ENABLE in a batch), the state's restore.  At the freeze the predecessor
 * checks that the fds of FDS are still the ones it uses (no chardev client
 * came or went, no QEMU restarted, no device added or removed); if not it
 * refuses ("try again").  From FREEZE on it serves nothing (its loop does
 * not run); vCPUs that exit meanwhile leave their request READY in the
 * shared page.  Before RESULT 0 it has touched nothing the successor took:
 * on any failure (the successor exits, refuses the state, says nothing for
 * DM_REPLACE_TIMEOUT_MS) it kills the successor, tells the router the
 * handover is aborted and goes on serving.  After RESULT 0 it sends its
 * reply and exits at once, without tearing anything down.
 */
#ifndef FERRY_DM_REPLACE_H
#define FERRY_DM_REPLACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "devmodel/control.h"
#include "devmodel/dm-server.h"
#include "devmodel/dm.h"

#define DM_REPLACE_FD           3           /* the successor's end of the socket pair */
#define DM_REPLACE_TIMEOUT_MS   10000       /* per step of the exchange */

struct dm_replace;

/*
 * Companion mode (no ioreq server: ferry-dm serves a QEMU guest's USB):
 * what dm-main hands over besides the framework's, through these hooks.
 *   qmp_fd   predecessor, with the fds that hold still (FDS): the QMP
 *            connection's, or -1
 *   save     predecessor, at the freeze: quiesce and append the COMPANION
 *            section's bytes to state, the fds to pass to fds (*n, at most
 *            max) with their roles; -errno and why: the replace is refused
 *   resume   predecessor: the handover failed after save, serve on
 *   restore  successor, after the devices' state: take it over from the
 *            section and the passed fds of kind DM_STATE_FD_COMPANION
 *   save_pci predecessor, at the freeze after save: the PCI assignments (the
 *            PCI section, left empty when there are none, and the claims' lock
 *            fds with roles DM_STATE_FD_PCI); -errno and why: refused (resume
 *            follows)
 *   restore_pci successor, after restore: from the PCI section (NULL, 0 when
 *            absent) and the fds of kind DM_STATE_FD_PCI
 */
struct dm_replace_companion {
    int (*qmp_fd)(void *opaque);
    int (*save)(void *opaque, GByteArray *state, int *fds, uint32_t *roles, unsigned max,
                unsigned *n, char *why, size_t why_len);
    void (*resume)(void *opaque);
    int (*restore)(void *opaque, const uint8_t *state, size_t len, const int *fds, unsigned n,
                   char *why, size_t why_len);
    int (*save_pci)(void *opaque, GByteArray *pci, int *fds, uint32_t *roles, unsigned max,
                    unsigned *n, char *why, size_t why_len);
    int (*restore_pci)(void *opaque, const uint8_t *pci, size_t len, const int *fds,
                       unsigned n, char *why, size_t why_len);
    void *opaque;
};

struct dm_replace_parts {
    struct ferry_dm *dm;
    struct ferry_dm_server *server;
    struct ferry_dm_control *control;
    const char *guest;
    const struct dm_replace_companion *companion;   /* NULL: not companion mode */
};

/*
 * Predecessor: fork the launcher now (before confinement).  argv is the
 * successor's command line (argv[0] the binary, absolute), copied.
 */
FERRY_MUST_CHECK int dm_replace_prepare(const char *const *argv,
                                        const struct ferry_sandbox_config *sbx,
                                        struct dm_replace **out);
void dm_replace_free(struct dm_replace *r);
/* The successor's binary. */
const char *dm_replace_binary(const struct dm_replace *r);
/*
 * A successor forks its own launcher while its stderr is still the pipe
 * its predecessor reads; once it has taken over, fd (its log, stderr)
 * becomes the launcher's log too.  0 or -errno.
 */
FERRY_MUST_CHECK int dm_replace_log_to(struct dm_replace *r, int fd);
/*
 * x-replace in steps, so that this ferry-dm serves while its successor
 * execs, adds its devices and confines itself: begin starts the successor
 * (*sock becomes readable when it says STARTED, or goes); offer, then,
 * passes it everything that holds still (FDS); when *sock is readable
 * again (PREPARED, or it went), commit stops serving, passes the state and
 * what may have changed (FREEZE), and waits until the successor serves.
 * offer and commit: 0, or -errno with a sentence in why, everything undone
 * (the successor stopped) and this ferry-dm serving on.  cancel stops a
 * begun successor that never came (the caller's timeout), undoing an
 * offer.  fault (NULL in normal use) corrupts what is sent, for the tests:
 * "checksum", "truncate", "version", or "stale" (a back end passed with
 * FDS reads as changed at the freeze).
 */
FERRY_MUST_CHECK int dm_replace_begin(struct dm_replace *r, int *sock, char *why,
                                      size_t why_len);
FERRY_MUST_CHECK int dm_replace_offer(struct dm_replace *r, const struct dm_replace_parts *p,
                                      const char *fault, char *why, size_t why_len);
FERRY_MUST_CHECK int dm_replace_commit(struct dm_replace *r, const char *fault, pid_t *pid,
                                       char *why, size_t why_len);
void dm_replace_cancel(struct dm_replace *r);
/*
 * The last successful commit's freeze: when it began (CLOCK_MONOTONIC) and
 * how long this ferry-dm served nothing (until RESULT: an upper bound of
 * the guest's wait for ferry-dm), in ns.
 */
void dm_replace_last_freeze(const struct dm_replace *r, uint64_t *at_ns, uint64_t *len_ns);
/*
 * All of x-replace at once (begun or not: then it begins here), blocking.
 * 0 when the successor (*pid) serves: the caller answers and exits without
 * serving or tearing down anything.
 */
int dm_replace_run(struct dm_replace *r, const struct dm_replace_parts *p, const char *fault,
                   pid_t *pid, char *why, size_t why_len);

/* Successor: as early as it can, say it runs (the predecessor serves until then). */
int dm_takeover_started(int fd);
/* Successor: the fds that hold still and the registration (FDS), before devices are added. */
struct dm_takeover;
FERRY_MUST_CHECK int dm_takeover_receive(int fd, struct dm_takeover **out, char *why,
                                         size_t why_len);
/*
 * Adopt the ioreq registration (into p->server; nothing of it used until
 * finish) and guest RAM, give chardevs and devices their fds.
 */
FERRY_MUST_CHECK int dm_takeover_adopt(struct dm_takeover *t, struct ferry_dm_server *server,
                                       char *why, size_t why_len);
/* A passed fd of this role (DM_STATE_FD_QMP), ours now, or -1. */
int dm_takeover_fd(struct dm_takeover *t, uint32_t role);
/* The predecessor's listening control socket (ours now), or -1. */
int dm_takeover_control_fd(struct dm_takeover *t);
/*
 * After confinement: PREPARED, then the freeze (the late fds, the state),
 * start, restore, serve, RESULT.
 */
FERRY_MUST_CHECK int dm_takeover_finish(struct dm_takeover *t, const struct dm_replace_parts *p,
                                        char *why, size_t why_len);
/* Tell the predecessor why not (best effort). */
void dm_takeover_refuse(struct dm_takeover *t, int status, const char *why);
void dm_takeover_free(struct dm_takeover *t);

#endif
