/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Exit statuses of ferry-hv (and `ferry run`, which passes them through).
 * A guest that writes N to the debug exit port ends ferry-hv with status N
 * (0..63); everything else has a status of its own.
 */
#ifndef FERRY_HV_EXIT_H
#define FERRY_HV_EXIT_H

#define FERRY_HV_EXIT_OK            0   /* guest powered off (S5, debug exit 0) */
#define FERRY_HV_EXIT_FAILURE       1   /* ferry-hv itself failed */
#define FERRY_HV_EXIT_USAGE         2   /* bad command line or config */
#define FERRY_HV_EXIT_GUEST_MAX     63  /* debug exit codes 0..63 pass through */
#define FERRY_HV_EXIT_CRASH         70  /* triple fault, emulation failure, crash request */
#define FERRY_HV_EXIT_REBOOT        71  /* guest asked for a reboot */
#define FERRY_HV_EXIT_STOPPED       72  /* stopped by SIGTERM/SIGINT */
#define FERRY_HV_EXIT_NO_KVM        73  /* /dev/kvm missing */
#define FERRY_HV_EXIT_KVM_ACCESS    74  /* /dev/kvm not accessible */
#define FERRY_HV_EXIT_KVM_CAP       75  /* KVM lacks a needed capability */
#define FERRY_HV_EXIT_BAD_IMAGE     76  /* the guest image cannot be loaded */

/* The debug exit port: a write of N ends the guest with status N. */
#define FERRY_HV_DEBUG_EXIT_PORT    0x501
/* The debug console port (Bochs/QEMU "debugcon"): bytes go to stdout. */
#define FERRY_HV_DEBUG_CONSOLE_PORT 0xe9

#endif
