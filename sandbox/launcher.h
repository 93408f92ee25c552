/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The launcher: how a confined ferry-dm (re)starts a helper program such
 * as the remote QEMU of an mpqemu device without ever calling fork or
 * execve itself.
 *
 * sandbox_launcher_create() forks a small helper process *before* ferry-dm
 * confines itself.  The helper holds one fixed command line; it keeps
 * only its end of a socket pair (every other inherited fd is closed),
 * resets every signal to its default but SIGPIPE, which it ignores (its
 * stderr may be a pipe whose reader has gone: a log line must not kill it;
 * its programs get SIGPIPE back), optionally confines itself without
 * a seccomp filter (user switch, no capabilities, no_new_privs: it must
 * still exec), and runs at most max_live instances at a time (a
 * compromised ferry-dm cannot make it fork without bound).
 *
 * sandbox_launcher_start() asks it for one more instance: the helper makes
 * a socket pair and a pipe, forks, and in the child puts /dev/null on
 * fd 0, the pipe on fds 1 and 2, its socket end on fd 3 (every "{fd}" in
 * the arguments becomes 3; with second_sock, the end of a second socket pair
 * on fd 4, "{fd2}" in the arguments), sets PR_SET_PDEATHSIG to SIGKILL (the program
 * dies with the helper, the helper with ferry-dm) and execs; ferry-dm gets
 * the other socket end(s) and the pipe's read end by SCM_RIGHTS.  A second
 * socket is how a confined ferry-dm gets a new channel to each new instance
 * without socket() or connect() (the xhci device's remote QEMU takes its QMP
 * monitor on it).  A request
 * carries nothing a compromised ferry-dm could use to choose the program
 * or its arguments.  sandbox_launcher_stop() has the helper kill and reap an
 * instance (a confined ferry-dm may only signal itself) and returns its
 * wait status; an instance that ended on its own shows as a hang-up on
 * its socket and pipe.
 *
 * Confined ferry-dm needs only sendmsg/recvmsg/poll/close (base list) for
 * these calls, and wait4 (mpqemu list) to reap the helper at the end.
 */
#ifndef FERRY_SANDBOX_LAUNCHER_H
#define FERRY_SANDBOX_LAUNCHER_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/ferry-log.h"
#include "sandbox/sandbox.h"

#define FERRY_LAUNCHER_ARGS_MAX 64
#define FERRY_LAUNCHER_FD 3
#define FERRY_LAUNCHER_FD2 4            /* second_sock's end in the program */
#define FERRY_LAUNCHER_LIVE_DEFAULT 2   /* the running one and its replacement */

struct ferry_launcher;

struct ferry_launcher_config {
    const char *const *argv;    /* NULL-terminated, argv[0] an absolute path; copied */
    int sock_type;              /* SOCK_STREAM or SOCK_SEQPACKET (0: SOCK_STREAM) */
    bool second_sock;           /* a second socket pair (SOCK_STREAM) on the program's fd 4 */
    unsigned max_live;          /* instances alive at once (0: FERRY_LAUNCHER_LIVE_DEFAULT) */
    /*
     * Optional: the helper's own confinement: user, no capabilities (but
     * the config's keep_caps, which its programs then start with),
     * no_new_privs.  Its seccomp mode is forced to OFF and its namespaces
     * off (the program must exec and see its files).
     */
    const struct ferry_sandbox_config *sandbox;
    /*
     * The programs outlive the helper and ferry-dm (no PR_SET_PDEATHSIG): for ferry-dm's successor when it is replaced
     * (docs/ferry-dm.md, "Replacing ferry-dm").
     */
    bool outlive;
    ferry_log_fn log;
    void *opaque;
};

struct ferry_launcher_instance {
    int sock;                   /* ferry-dm's end of the program's fd 3 */
    int errfd;                  /* read end of the program's stdout and stderr */
    int sock2;                  /* ferry-dm's end of the program's fd 4 (second_sock), or -1 */
    pid_t pid;                  /* for sandbox_launcher_stop() and logs */
};

/* Forks the helper now.  0 or -errno. */
FERRY_MUST_CHECK int sandbox_launcher_create(const struct ferry_launcher_config *cfg,
                                           struct ferry_launcher **out);
/*
 * One more instance.  0 or -errno: -EPIPE the helper is gone, -EAGAIN
 * max_live instances still run, otherwise the helper's reason (e.g.
 * -ENOENT from execve).  The caller closes inst->sock, inst->errfd and
 * inst->sock2.
 */
FERRY_MUST_CHECK int sandbox_launcher_start(struct ferry_launcher *l,
                                          struct ferry_launcher_instance *inst);
/*
 * Kill (SIGKILL) the instance pid if it still runs, reap it, and store its
 * wait status in *wstatus (may be NULL).  -ESRCH if pid is not a live or
 * unreaped instance of this launcher.
 */
int sandbox_launcher_stop(struct ferry_launcher *l, pid_t pid, int *wstatus);
/* Closes the helper's socket (the helper and its programs then exit) and reaps it. */
void sandbox_launcher_destroy(struct ferry_launcher *l);
/* The same without reaping (confined without wait4): the helper exits on its own. */
void sandbox_launcher_abandon(struct ferry_launcher *l);

/*
 * Replacing ferry-dm (docs/ferry-dm.md, "Replacing ferry-dm"): the helper
 * and its programs normally die with ferry-dm (PR_SET_PDEATHSIG).  keep
 * true: the helper lives on when ferry-dm exits (it still exits when its
 * socket closes, and its programs still die with it); keep false undoes
 * that (the replace failed).  0 or -errno.
 */
FERRY_MUST_CHECK int sandbox_launcher_keep(struct ferry_launcher *l, bool keep);
/* The socket to the helper, to hand to a successor (still ours). */
int sandbox_launcher_fd(const struct ferry_launcher *l);
/* The helper's pid (0 for an adopted one), and whether it has been found gone (-EPIPE). */
pid_t sandbox_launcher_pid(const struct ferry_launcher *l);
bool sandbox_launcher_gone(const struct ferry_launcher *l);
/*
 * fd (a copy) becomes the helper's stdout and stderr, where it logs.  A
 * successor ferry-dm forks its helper while its own stderr is still the
 * pipe its predecessor reads (and closes on exit); it passes its real log
 * once it has it.  The helper sends no reply (the successor serves on at
 * once); 0, or -EPIPE when the helper is gone.
 */
FERRY_MUST_CHECK int sandbox_launcher_log_to(struct ferry_launcher *l, int fd);
/*
 * A successor: take over a helper from its predecessor by that socket (now
 * the caller's); second_sock as the helper was created with.  The helper is not our child: destroy does not reap it
 * (its new parent does), it exits when the socket closes.
 */
FERRY_MUST_CHECK int sandbox_launcher_adopt(int sock, bool second_sock, ferry_log_fn log,
                                            void *opaque, struct ferry_launcher **out);

#endif
