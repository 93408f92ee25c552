// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The syscalls every confined ferry-dm needs: a libevent (epoll) loop with
 * glib and jansson, the ioreq transport (memfd pages already mapped or
 * mapped from fds it was sent, eventfd doorbells, a seqpacket control
 * socket with SCM_RIGHTS), timers, logging to an fd it already holds, and
 * accepting connections on a control socket it already listens on.
 *
 * Not here, on purpose: open/openat (every file is opened before
 * confinement or handed over by the broker), socket/connect/bind (no new
 * endpoints), execve/fork (QEMU restarts: the qemu device's list, devices/qemu.c),
 * ptrace, process_vm_*, mount, any executable mapping, changing the SIGSYS
 * disposition, signals to other processes, KVM (ferry-dm never sees
 * /dev/kvm).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "sandbox/sandbox.h"

FERRY_SYSCALL_LIST(sandbox_syscalls_base, "base",
    "event loop (libevent, glib, jansson) and the ioreq transport",
    /* I/O on fds it holds */
    FERRY_SC("read"), FERRY_SC("write"), FERRY_SC("readv"), FERRY_SC("writev"),
    FERRY_SC("pread64"), FERRY_SC("pwrite64"), FERRY_SC("lseek"),
    FERRY_SC("recvmsg"), FERRY_SC("sendmsg"), FERRY_SC("recvfrom"), FERRY_SC("sendto"),
    FERRY_SC("recvmmsg"), FERRY_SC("sendmmsg"),
    FERRY_SC("close"), FERRY_SC("dup"), FERRY_SC("dup2"), FERRY_SC("dup3"),
    /*
     * Teardown removes the control and serial sockets it bound: confined,
     * that fails softly (the names are outside its empty root anyway);
     * the next ferry-dm on the same path replaces them.
     */
    FERRY_SC_ERRNO("unlink", EACCES), FERRY_SC_ERRNO("unlinkat", EACCES),
    /* fcntl: flags and close-on-exec only; never F_SETOWN/F_SETSIG (SIGIO to another process) */
    FERRY_SC_EQ("fcntl", 1, F_GETFD), FERRY_SC_EQ("fcntl", 1, F_SETFD),
    FERRY_SC_EQ("fcntl", 1, F_GETFL), FERRY_SC_EQ("fcntl", 1, F_SETFL),
    FERRY_SC_EQ("fcntl", 1, F_DUPFD_CLOEXEC), FERRY_SC_EQ("fcntl", 1, F_GET_SEALS),
    FERRY_SC("fstat"), FERRY_SC("newfstatat"),  /* glibc's fstat is fstatat(fd, "", AT_EMPTY_PATH) */
    FERRY_SC("shutdown"), FERRY_SC("getsockname"), FERRY_SC("getpeername"),
    FERRY_SC("getsockopt"),
    FERRY_SC("accept4"), FERRY_SC("accept"),    /* on a socket it already listens on */
    FERRY_SC_EQ("socketpair", 0, AF_UNIX),      /* libevent's signal and notify pipes */
    FERRY_SC("pipe2"),
    FERRY_SC_EQ("setsockopt", 1, SOL_SOCKET),
    /* event loop and timers */
    FERRY_SC("epoll_create1"), FERRY_SC("epoll_ctl"), FERRY_SC("epoll_wait"),
    FERRY_SC("epoll_pwait"), FERRY_SC("epoll_pwait2"),
    FERRY_SC("poll"), FERRY_SC("ppoll"), FERRY_SC("pselect6"), FERRY_SC("select"),
    FERRY_SC("eventfd2"), FERRY_SC("timerfd_create"), FERRY_SC("timerfd_settime"),
    FERRY_SC("timerfd_gettime"),
    FERRY_SC("clock_gettime"), FERRY_SC("clock_getres"), FERRY_SC("gettimeofday"),
    FERRY_SC("clock_nanosleep"), FERRY_SC("nanosleep"),
    FERRY_SC("getcpu"),     /* sched_getcpu's fallback (the ioreq server says where it runs) */
    FERRY_IOCTL(FIONREAD),                      /* libevent's evbuffer_read */
    FERRY_IOCTL(FIONBIO),
    FERRY_IOCTL(TCGETS),                        /* isatty() of the log target */
    /* memory: never executable */
    FERRY_SC_MASKED("mmap", 2, PROT_EXEC, 0),
    FERRY_SC_MASKED("mprotect", 2, PROT_EXEC, 0),
    FERRY_SC_MASKED("pkey_mprotect", 2, PROT_EXEC, 0),
    FERRY_SC("munmap"), FERRY_SC("mremap"), FERRY_SC("madvise"), FERRY_SC("brk"),
    /* threads (glib may start workers); never a new process */
    FERRY_SC("futex"), FERRY_SC("set_robust_list"), FERRY_SC("get_robust_list"),
    FERRY_SC("rseq"), FERRY_SC("set_tid_address"), FERRY_SC("sched_yield"),
    FERRY_SC("sched_getaffinity"),
    FERRY_SC_MASKED("clone", 0, CLONE_THREAD, CLONE_THREAD),
    FERRY_SC_ERRNO("clone3", ENOSYS),           /* flags hidden in memory: glibc falls back to clone */
    FERRY_SC_EQ("prctl", 0, PR_SET_NAME), FERRY_SC_EQ("prctl", 0, PR_GET_NAME),
    /* identity, randomness, limits (read-only) */
    FERRY_SC("getpid"), FERRY_SC("gettid"), FERRY_SC("getppid"),
    FERRY_SC("getuid"), FERRY_SC("geteuid"), FERRY_SC("getgid"), FERRY_SC("getegid"),
    FERRY_SC("getresuid"), FERRY_SC("getresgid"), FERRY_SC("getgroups"),
    FERRY_SC("getrandom"), FERRY_SC("uname"),
    { .syscall = "prlimit64", .match = { { .arg = 0, .op = FERRY_ARG_EQ, .value = 0,
      .name = "self" }, { .arg = 2, .op = FERRY_ARG_EQ, .value = 0, .name = "NULL (get only)" } } },
    FERRY_SC("getrusage"),
    /* signals: not SIGSYS (the violation reporter), only to itself (see sandbox.c) */
    /* any signal but SIGSYS (31), exactly: 0..30, 32..63, 64; never a truncated SIGSYS */
    FERRY_SC_LT("rt_sigaction", 0, SIGSYS),
    FERRY_SC_MASKED("rt_sigaction", 0, ~(uint64_t)0x1f, 0x20),
    FERRY_SC_EQ("rt_sigaction", 0, _NSIG - 1),
    FERRY_SC("rt_sigprocmask"), FERRY_SC("rt_sigreturn"), FERRY_SC("sigaltstack"),
    FERRY_SC("rt_sigtimedwait"), FERRY_SC("signalfd4"), FERRY_SC("restart_syscall"),
    /* the end */
    FERRY_SC("exit"), FERRY_SC("exit_group"));

/*
 * The ASan/UBSan runtime in a confined process: measured with the security
 * suite under -Db_sanitize=address,undefined, its steady state needs
 * nothing beyond the base list (allocator: mmap/munmap/madvise; threads:
 * sched_yield; signals: sigaltstack).  They are repeated here so that a
 * leaner base list cannot break sanitizer builds.  Two things it does need
 * are not allowed, on purpose: LeakSanitizer's exit-time check (ptrace
 * from a clone()d tracer; a confined process leaves through
 * sandbox_exit) and a full error report (it opens /proc/self/maps;
 * run with --seccomp=log when chasing one).
 */
FERRY_SYSCALL_LIST(sandbox_syscalls_sanitizer, "sanitizer",
    "AddressSanitizer/UBSan runtime (sanitizer builds only)",
    FERRY_SC("sched_yield"), FERRY_SC("madvise"), FERRY_SC("sigaltstack"));
