/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A confined test device model and the router around it, shared by the
 * sandbox tests (tests/sandbox/test-sandbox.c) and bench/sandbox-rtt.
 *
 * The child process registers as an ioreq server on one end of a
 * socketpair (the other end goes to a router in the parent, served by a
 * control thread), enters the sandbox with the given configuration, then
 * claims its ports and serves them: the same start-up order as ferry-dm.
 *
 * The poke device (test-only, never built into ferry-dm): ports
 * POKE_PORT_REG..+63 are plain registers; a write of a poke_violation
 * number to POKE_PORT_VIOLATE makes it try that forbidden thing and then
 * answer with the syscall's result (which it only gets to do in log mode).
 */
#ifndef FERRY_TEST_SANDBOX_RIG_H
#define FERRY_TEST_SANDBOX_RIG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"
#include "ioreq/ioreq.h"

#define POKE_PORT_REG       0x3000u
#define POKE_PORT_VIOLATE   0x3040u
#define POKE_PORT_RESULT    0x3041u     /* read: result of the last violation attempt */
#define POKE_PORT_CONFINED  0x3042u     /* read: sandbox_active() */
#define POKE_PORT_END       0x3042u

enum poke_violation {
    POKE_OPEN_SHADOW = 1,   /* open("/etc/shadow") */
    POKE_EXECVE,            /* execve("/bin/true") */
    POKE_SOCKET_INET,       /* socket(AF_INET, SOCK_STREAM) */
    POKE_PTRACE,            /* ptrace(PTRACE_ATTACH, parent) */
    POKE_MMAP_EXEC,         /* mmap(PROT_READ | PROT_EXEC) */
    POKE_THREAD_SOCKET,     /* socket(AF_INET) from a second thread */
    POKE_SIGACTION_SIGSYS,  /* rt_sigaction(SIGSYS): silencing the reporter */
    POKE_SIGACTION_WIDE,    /* rt_sigaction(1 << 32 | SIGSYS): the kernel truncates to SIGSYS */
    POKE_FCNTL_SETOWN,      /* fcntl(F_SETOWN): SIGIO to another process */
    POKE_NR,
    POKE_THREAD_OK = 100,   /* allowed: start and join a thread (clone3 -> clone) */
};

/* The syscall each violation must be reported as. */
const char *poke_violation_syscall(enum poke_violation v);

struct sandbox_rig {
    struct ioreq_router *r;
    pthread_t thread;
    bool thread_running;
    atomic_bool stop;
    pid_t child;
    int log_fd;             /* read end: everything the child wrote to stderr */
    atomic_int gone;        /* server_gone callbacks seen */
    char gone_why[128];
};

/*
 * Start a router and a poke device confined with cfg (NULL: not confined
 * at all); waits until the device serves.  0 or -errno; on a failure the
 * child's output is in the log.
 */
int sandbox_rig_start(struct sandbox_rig *t, const struct ferry_sandbox_config *cfg);
/* How the child is started before it confines itself. */
struct sandbox_rig_opts {
    const char *pre_user;   /* become this user first, as systemd's User= (needs root) */
    bool deny_unshare;      /* unshare() fails with EPERM, as under RestrictNamespaces= */
};
int sandbox_rig_start_opts(struct sandbox_rig *t, const struct ferry_sandbox_config *cfg,
                           const struct sandbox_rig_opts *opts);
/*
 * The same router, but the device model is a real program (ferry-dm):
 * argv, with "--ioreq-fd=N" appended, runs in the child; waits until a
 * read of probe_port (size bytes) is answered.
 */
int sandbox_rig_start_program(struct sandbox_rig *t, const char *const *argv,
                              uint16_t probe_port, unsigned size);
/* One port access from vCPU 0 of size 1, 2 or 4 bytes. */
int sandbox_rig_io_size(struct sandbox_rig *t, uint16_t port, unsigned size, bool write,
                        uint32_t *data);
/* One port access from vCPU 0; returns the ioreq_router_send result. */
int sandbox_rig_io(struct sandbox_rig *t, uint16_t port, bool write, uint32_t *data);
/* Wait for the child to end; its wait status. */
int sandbox_rig_wait(struct sandbox_rig *t);
/* Drain the child's output (after it ended) into buf, NUL-terminated. */
size_t sandbox_rig_read_log(struct sandbox_rig *t, char *buf, size_t len);
void sandbox_rig_stop(struct sandbox_rig *t);

#endif
