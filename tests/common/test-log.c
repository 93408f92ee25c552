// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * common/log-glib.c: the journal gets every structured field (a socket of the
 * test's own stands in for journald's), stderr gets the line otherwise, and a
 * journal that refuses a message loses nothing: the line goes to stderr.
 * Check forks per test, so each test sets up logging from scratch.
 */
#include "common/log-glib.h"
#include "tests/check-main.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct rig {
    char dir[64];
    char sock[128];
    char err[128];
    int jfd;            /* our "journald" */
};

/* stderr to a file; JOURNAL_STREAM names it when journal is set. */
static void rig_setup(struct rig *r, bool journal)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    char js[64];
    int fd;

    strcpy(r->dir, "/tmp/ferry-test-log-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(r->dir));
    snprintf(r->sock, sizeof(r->sock), "%s/journal", r->dir);
    snprintf(r->err, sizeof(r->err), "%s/stderr", r->dir);
    r->jfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(r->jfd, 0);
    strcpy(sa.sun_path, r->sock);
    ck_assert_int_eq(bind(r->jfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fd = open(r->err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    if (journal)
        setenv("JOURNAL_STREAM", js, 1);
    else
        unsetenv("JOURNAL_STREAM");
    setenv("FERRY_LOG_JOURNAL_SOCKET", r->sock, 1);
}

static char *rig_stderr(struct rig *r)
{
    char *s = NULL;

    ck_assert(g_file_get_contents(r->err, &s, NULL, NULL));
    return s;
}

static void rig_teardown(struct rig *r)
{
    close(r->jfd);
    unlink(r->sock);
    unlink(r->err);
    rmdir(r->dir);
}

static bool has(const char *buf, size_t len, const char *needle, size_t nlen)
{
    return memmem(buf, len, needle, nlen) != NULL;
}
#define HAS(buf, len, lit) has(buf, len, lit, sizeof(lit) - 1)

START_TEST(test_journal_keeps_fields)
{
    static const char note[] = "FERRY_NOTE\n\x0e\0\0\0\0\0\0\0two\nlines here\n";
    struct rig r;
    char buf[4096];
    GLogField extra[] = {
        { "FERRY_GUEST", "a", -1 },
        { "FERRY_NOTE", "two\nlines here", -1 },
    };

    rig_setup(&r, true);
    ferry_log_init("test-log", 2);
    ck_assert_int_ge(ferry_log_journal_fd(), 0);
    ferry_log_fields(FERRY_LOG_INFO, "inst", extra, 2, "verdict allow");
    ssize_t n = recv(r.jfd, buf, sizeof(buf), MSG_DONTWAIT);
    ck_assert_int_gt(n, 0);
    ck_assert(HAS(buf, (size_t)n, "MESSAGE=test-log[inst] info: verdict allow\n"));
    ck_assert(HAS(buf, (size_t)n, "PRIORITY=6\n"));
    ck_assert(HAS(buf, (size_t)n, "SYSLOG_IDENTIFIER=test-log\n"));
    ck_assert(HAS(buf, (size_t)n, "FERRY_COMPONENT=test-log\n"));
    ck_assert(HAS(buf, (size_t)n, "FERRY_INSTANCE=inst\n"));
    ck_assert(HAS(buf, (size_t)n, "FERRY_GUEST=a\n"));
    ck_assert(HAS(buf, (size_t)n, note));       /* journald's binary form */

    /* A library's callback line is structured too. */
    ferry_log_glib("dev0", FERRY_LOG_ERROR, "cannot claim");
    n = recv(r.jfd, buf, sizeof(buf), MSG_DONTWAIT);
    ck_assert_int_gt(n, 0);
    ck_assert(HAS(buf, (size_t)n, "MESSAGE=test-log[dev0] error: cannot claim\n"));
    ck_assert(HAS(buf, (size_t)n, "PRIORITY=3\n"));

    g_autofree char *err = rig_stderr(&r);
    ck_assert_str_eq(err, "");
    rig_teardown(&r);
}
END_TEST

START_TEST(test_stderr_when_not_journal)
{
    struct rig r;
    char buf[256];

    rig_setup(&r, false);
    ferry_log_init("test-log", 0);
    ck_assert_int_eq(ferry_log_journal_fd(), -1);
    ferry_log(FERRY_LOG_WARNING, NULL, "no journal here");
    ferry_log(FERRY_LOG_DEBUG, NULL, "below the verbosity");
    ck_assert_int_lt(recv(r.jfd, buf, sizeof(buf), MSG_DONTWAIT), 0);
    g_autofree char *err = rig_stderr(&r);
    ck_assert_str_eq(err, "test-log warning: no journal here\n");
    rig_teardown(&r);
}
END_TEST

START_TEST(test_journal_gone_falls_back)
{
    struct rig r;

    rig_setup(&r, true);
    ferry_log_init("test-log", 0);
    ck_assert_int_ge(ferry_log_journal_fd(), 0);
    close(r.jfd);                       /* journald went away */
    r.jfd = -1;
    ferry_log(FERRY_LOG_ERROR, "x", "still said");
    g_autofree char *err = rig_stderr(&r);
    ck_assert_str_eq(err, "test-log[x] error: still said\n");
    rig_teardown(&r);
}
END_TEST

static TCase *log_tcase(void)
{
    return FERRY_CHECK_TCASE("log", 30, test_journal_keeps_fields,
                             test_stderr_when_not_journal, test_journal_gone_falls_back);
}

FERRY_CHECK_MAIN("log", log_tcase);
