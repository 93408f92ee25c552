/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm as a function: what main() runs, and what a test program that
 * adds a test-only device type (tests/security/ferry-dm-poke) runs too.
 */
#ifndef FERRY_DM_MAIN_H
#define FERRY_DM_MAIN_H

/* Parses argv, runs the device model until the guest or a signal ends it; the exit status. */
int dm_main(int argc, char **argv);

#endif
