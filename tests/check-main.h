/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The main() of a Check test program, written once
 * (#include "tests/check-main.h").
 *
 * A program whose suite is a list of TCase constructors:
 *
 *     FERRY_CHECK_MAIN("pci", pci_func_tcase, pci_bus_tcase);
 *
 * where a constructor may be as short as
 *
 *     static TCase *core_tcase(void)
 *     {
 *         return FERRY_CHECK_TCASE("core", 60, test_one, test_two);
 *     }
 *
 * A program that builds its suite itself, or has work to do first (a SKIP
 * check, a signal disposition, a fork mode) or after (killing a helper):
 *
 *     int main(void)
 *     {
 *         if (!have_qemu()) { printf("SKIP: ...\n"); return 77; }
 *         return ferry_check_run(my_suite(), CK_FORK_GETENV);
 *     }
 *
 * CK_FORK_GETENV is Check's default (one process per test unless the
 * environment says CK_FORK=no); CK_NOFORK runs every test in this process.
 */
#ifndef FERRY_TESTS_CHECK_MAIN_H
#define FERRY_TESTS_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

/* Runs every test of s with CK_NORMAL output, frees the runner (and s):
 * EXIT_SUCCESS when no test failed, EXIT_FAILURE otherwise. */
static inline int ferry_check_run(Suite *s, enum fork_status fork)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_set_fork_status(sr, fork);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* A suite named name holding the TCase each constructor of the NULL-ended
 * list builds, in order. */
static inline Suite *ferry_check_suite(const char *name, TCase *(*const tcases[])(void))
{
    Suite *s = suite_create(name);

    for (size_t i = 0; tcases[i]; i++)
        suite_add_tcase(s, tcases[i]());
    return s;
}

/* A TCase named name with the NULL-ended list of tests (START_TEST
 * names); timeout in seconds, 0 for Check's default. */
static inline TCase *ferry_check_tcase(const char *name, int timeout,
                                       const TTest *const tests[])
{
    TCase *tc = tcase_create(name);

    if (timeout > 0)
        tcase_set_timeout(tc, timeout);
    for (size_t i = 0; tests[i]; i++)
        tcase_add_test(tc, tests[i]);
    return tc;
}

#define FERRY_CHECK_TCASE(name, timeout, ...) \
    ferry_check_tcase((name), (timeout), (const TTest *const[]){ __VA_ARGS__, NULL })

#define FERRY_CHECK_SUITE(name, ...) \
    ferry_check_suite((name), (TCase *(*const[])(void)){ __VA_ARGS__, NULL })

#define FERRY_CHECK_MAIN(name, ...)                                                    \
    int main(void)                                                                     \
    {                                                                                  \
        return ferry_check_run(FERRY_CHECK_SUITE(name, __VA_ARGS__), CK_FORK_GETENV); \
    }

#endif
