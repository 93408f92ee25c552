// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Exclusive device ownership (policy/owner.c) between real processes: a
 * child holds a claim, the parent is refused naming it, the lock dies with
 * the child and its description is then found stale.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/owner.h"
#include "tests/check-main.h"

static char rundir[256];

static void setup(void)
{
    snprintf(rundir, sizeof(rundir), "%s/ferry-owner-XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(rundir));
}

static void teardown(void)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rundir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A child that claims id for guest and holds it until killed; returns its
 * pid once the claim is made (-1: it failed). */
static pid_t holder(const char *kind, const char *id, const char *guest, bool keep_lock)
{
    int p[2];
    char c = 0;
    pid_t pid;

    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct ferry_policy_owner *o;
        char err[256];
        int r = policy_owner_claim(rundir, kind, id, guest, "holder", getpid(), &o, NULL, err,
                                   sizeof(err));
        c = r == 0 ? 'y' : 'n';
        if (r == 0 && !keep_lock)
            policy_owner_detach(o);
        if (write(p[1], &c, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(p[1]);
    ck_assert_int_eq(read(p[0], &c, 1), 1);
    close(p[0]);
    ck_assert_int_eq(c, 'y');
    return pid;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

START_TEST(test_refused_naming_holder)
{
    struct ferry_policy_owner *o = NULL;
    struct ferry_policy_owner_info held;
    char err[400], want[64];
    pid_t a = holder("usb", "046d:c52b:SER1", "vm-a", true);
    int r;

    r = policy_owner_claim(rundir, "usb", "046d:c52b:SER1", "vm-b", "test", getpid(), &o, &held,
                           err, sizeof(err));
    ck_assert_int_eq(r, -EBUSY);
    ck_assert_ptr_null(o);
    ck_assert_str_eq(held.guest, "vm-a");
    ck_assert_int_eq(held.pid, a);
    ck_assert(held.locked);
    snprintf(want, sizeof(want), "guest vm-a (holder pid %d", (int)a);
    ck_assert_msg(strstr(err, want), "message '%s' does not name '%s'", err, want);
    /* the same guest through another process: not a conflict */
    r = policy_owner_claim(rundir, "usb", "046d:c52b:SER1", "vm-a", "test", getpid(), &o, &held,
                           err, sizeof(err));
    ck_assert_int_eq(r, -EALREADY);
    ck_assert_ptr_null(o);
    /* another device is free */
    r = policy_owner_claim(rundir, "usb", "046d:c52b:SER2", "vm-b", "test", getpid(), &o, &held,
                           err, sizeof(err));
    ck_assert_msg(r == 0, "%s", err);
    policy_owner_release(o);
    reap(a);
}
END_TEST

START_TEST(test_stale_after_crash)
{
    struct ferry_policy_owner *o = NULL;
    struct ferry_policy_owner_info held, q;
    char err[400];
    pid_t a = holder("pci", "0000:00:02.0", "vm-a", true);
    int r;

    ck_assert_int_eq(policy_owner_query(rundir, "pci", "0000:00:02.0", &q), 1);
    ck_assert_str_eq(q.guest, "vm-a");
    reap(a);        /* a crash: no release */
    ck_assert_int_eq(policy_owner_query(rundir, "pci", "0000:00:02.0", &q), 0);
    ck_assert(q.stale);
    r = policy_owner_claim(rundir, "pci", "0000:00:02.0", "vm-b", "test", getpid(), &o, &held,
                           err, sizeof(err));
    ck_assert_msg(r == 0, "%s", err);
    ck_assert(held.stale);
    ck_assert_str_eq(held.guest, "vm-a");
    ck_assert_int_eq(held.pid, a);
    ck_assert_int_eq(policy_owner_query(rundir, "pci", "0000:00:02.0", &q), 1);
    ck_assert_str_eq(q.guest, "vm-b");
    ck_assert_int_eq(q.pid, getpid());
    policy_owner_release(o);
    ck_assert_int_eq(policy_owner_query(rundir, "pci", "0000:00:02.0", &q), 0);
    ck_assert(!q.stale);
}
END_TEST

/* A broker claims for a live process and lets go of the lock: the process
 * it names owns the device while it runs. */
START_TEST(test_claim_for_another_process)
{
    struct ferry_policy_owner *o = NULL;
    struct ferry_policy_owner_info held;
    char err[400];
    pid_t a = holder("usb", "1-2.3", "vm-a", false);
    int r;

    r = policy_owner_claim(rundir, "usb", "1-2.3", "vm-b", "test", getpid(), &o, &held, err,
                           sizeof(err));
    ck_assert_int_eq(r, -EBUSY);
    ck_assert(!held.locked);
    ck_assert(held.alive);
    ck_assert_int_eq(policy_owner_list(rundir, "usb", NULL, NULL), 1);
    /* the broker after a detach */
    ck_assert_int_eq(policy_owner_drop(rundir, "usb", "1-2.3", "vm-b"), -EPERM);
    ck_assert_int_eq(policy_owner_drop(rundir, "usb", "1-2.3", "vm-a"), 0);
    ck_assert_int_eq(policy_owner_list(rundir, "usb", NULL, NULL), 0);
    r = policy_owner_claim(rundir, "usb", "1-2.3", "vm-b", "test", getpid(), &o, &held, err,
                           sizeof(err));
    ck_assert_msg(r == 0, "%s", err);
    ck_assert(!held.stale);
    policy_owner_release(o);
    reap(a);
}
END_TEST

/* The lock survives in a process the fd was given to (fork here: the same
 * open file description, as SCM_RIGHTS gives) after the claimant let go. */
START_TEST(test_lock_follows_fd)
{
    struct ferry_policy_owner *o = NULL;
    struct ferry_policy_owner_info held;
    char err[400];
    int p[2];
    pid_t child;
    char c;

    ck_assert_int_eq(policy_owner_claim(rundir, "pci", "0000:03:00.0", "vm-a", "broker",
                                        getpid(), &o, &held, err, sizeof(err)), 0);
    ck_assert_int_eq(pipe(p), 0);
    child = fork();
    if (child == 0) {
        c = 'y';
        if (write(p[1], &c, 1) != 1)
            _exit(1);
        for (;;)
            pause();    /* holds the inherited lock fd */
    }
    ck_assert_int_eq(read(p[0], &c, 1), 1);
    policy_owner_detach(o);     /* the broker exits; pid it named is us, alive */
    ck_assert_int_eq(policy_owner_claim(rundir, "pci", "0000:03:00.0", "vm-b", "test", 1, &o,
                                        &held, err, sizeof(err)), -EBUSY);
    ck_assert(held.locked);
    reap(child);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(test_bad_names)
{
    struct ferry_policy_owner *o = NULL;
    char err[400];

    ck_assert_int_eq(policy_owner_claim(rundir, "USB", "x", "g", "p", getpid(), &o, NULL, err,
                                        sizeof(err)), -EINVAL);
    ck_assert_int_eq(policy_owner_claim(rundir, "usb", "x", "g\nx", "p", getpid(), &o, NULL,
                                        err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(policy_owner_claim(rundir, "usb", "", "g", "p", getpid(), &o, NULL, err,
                                        sizeof(err)), -EINVAL);
    /* a path in an id stays one file name */
    ck_assert_int_eq(policy_owner_claim(rundir, "usb", "../../etc/x", "g", "p", getpid(), &o,
                                        NULL, err, sizeof(err)), 0);
    {
        char path[512];
        struct stat st;
        snprintf(path, sizeof(path), "%s/owners/usb/%%2E.%%2F..%%2Fetc%%2Fx", rundir);
        ck_assert_msg(stat(path, &st) == 0, "no %s", path);
    }
    policy_owner_release(o);
}
END_TEST

/* A claim adopted by another process (a replaced ferry-dm's successor, a
 * ferry-dm given a broker's lock) names the adopter from then on, its
 * start time too; guest, program and since are kept, and the text that got
 * shorter (a shorter pid) still reads back whole. */
START_TEST(test_adopt_names_adopter)
{
    struct ferry_policy_owner *o = NULL, *a = NULL;
    struct ferry_policy_owner_info held, before, after;
    char err[400];
    int fd;

    /* claimed for pid 4194303 (a long number; no such process here) */
    ck_assert_int_eq(policy_owner_claim(rundir, "usb", "1d50:6103:AD", "vm-a", "ferry-dm",
                                        4194303, &o, &held, err, sizeof(err)), 0);
    ck_assert_int_eq(policy_owner_query(rundir, "usb", "1d50:6103:AD", &before), 1);
    ck_assert_int_eq(before.pid, 4194303);
    fd = dup(policy_owner_fd(o));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(policy_owner_adopt(fd, policy_owner_path(o), &a), 0);
    policy_owner_detach(o);     /* the first holder goes; the adopter keeps the lock */
    ck_assert_int_eq(policy_owner_query(rundir, "usb", "1d50:6103:AD", &after), 1);
    ck_assert_int_eq(after.pid, getpid());
    ck_assert_uint_eq(after.start, policy_owner_pid_start(NULL, getpid()));
    ck_assert(after.locked && after.alive);
    ck_assert_str_eq(after.guest, "vm-a");
    ck_assert_str_eq(after.program, "ferry-dm");
    ck_assert_str_eq(after.since, before.since);
    ck_assert_int_eq(policy_owner_claim(rundir, "usb", "1d50:6103:AD", "vm-b", "test", 1, &o,
                                        &held, err, sizeof(err)), -EBUSY);
    ck_assert_int_eq(held.pid, getpid());
    policy_owner_release(a);
}
END_TEST

static TCase *owner_tcase(void)
{
    TCase *tc = FERRY_CHECK_TCASE("owner", 30, test_refused_naming_holder, test_stale_after_crash,
                                  test_claim_for_another_process, test_lock_follows_fd,
                                  test_bad_names, test_adopt_names_adopter);
    tcase_add_checked_fixture(tc, setup, teardown);
    return tc;
}

FERRY_CHECK_MAIN("policy-owner", owner_tcase);
