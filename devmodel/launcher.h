/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The launcher: how a confined ferry-dm (re)starts a helper program such
 * as the remote QEMU of an mpqemu device without ever calling execve.
 *
 * ferry_launcher_create() forks a small helper process *before* ferry-dm
 * confines itself.  The helper holds one fixed command line; it keeps
 * only its end of a socket pair (every other inherited fd is closed),
 * optionally confines itself without a seccomp filter (user switch, no
 * capabilities, no_new_privs: it must still exec), and starts at most
 * max_live instances alive at a time (a compromised ferry-dm cannot make
 * it fork without bound).  ferry_launcher_start()
 * asks it for one more instance: the helper creates a fresh socket pair,
 * forks, puts one end on fd 3 in the child (PR_SET_PDEATHSIG: the program
 * dies with the helper, and the helper dies with ferry-dm), replaces every
 * "{fd}" in the arguments with 3, execs the program, and sends the other
 * end back with SCM_RIGHTS.  The request carries no data a compromised
 * ferry-dm could use to choose the program or its arguments.  -EAGAIN
 * means max_live instances are still running.
 *
 * Confined ferry-dm needs only sendmsg/recvmsg/poll/close (base list) for
 * ferry_launcher_start().  Supervise the program by its socket: it hangs
 * up when the program exits.
 */
#ifndef FERRY_DEVMODEL_LAUNCHER_H
#define FERRY_DEVMODEL_LAUNCHER_H

#include <sys/types.h>

#include "common/ferry-log.h"
#include "devmodel/sandbox.h"

#define FERRY_LAUNCHER_ARGS_MAX 64
#define FERRY_LAUNCHER_FD 3
#define FERRY_LAUNCHER_LIVE_DEFAULT 2   /* the running one and its replacement */

struct ferry_launcher;

struct ferry_launcher_config {
    const char *const *argv;    /* NULL-terminated, argv[0] an absolute path */
    int sock_type;              /* SOCK_STREAM or SOCK_SEQPACKET (0: SOCK_STREAM) */
    unsigned max_live;          /* instances alive at once (0: FERRY_LAUNCHER_LIVE_DEFAULT) */
    /*
     * Optional: the helper's own confinement: user, no capabilities,
     * no_new_privs.  Its seccomp mode is forced to OFF and its namespaces
     * off (the program must exec and see its files).
     */
    const struct ferry_sandbox_config *sandbox;
    ferry_log_fn log;
    void *opaque;
};

/* Forks the helper now.  0 or -errno. */
FERRY_MUST_CHECK int ferry_launcher_create(const struct ferry_launcher_config *cfg,
                                           struct ferry_launcher **out);
/*
 * One more instance of the program: *sock gets ferry-dm's end of its
 * socket pair, *pid (may be NULL) its pid.  0 or -errno (-EPIPE: the
 * helper is gone; otherwise the helper's reason, e.g. -ENOENT from execve).
 */
FERRY_MUST_CHECK int ferry_launcher_start(struct ferry_launcher *l, int *sock, pid_t *pid);
/* Closes the helper's socket (the helper and its programs then exit) and reaps it. */
void ferry_launcher_destroy(struct ferry_launcher *l);

#endif
