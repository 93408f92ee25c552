/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm unit tests: a device model with a recording backend (claims,
 * interrupts, shutdown requests) and clocks the tests set, so devices are
 * driven through the framework's dispatch without any ioreq transport.
 */
#ifndef FERRY_TEST_DEVMODEL_H
#define FERRY_TEST_DEVMODEL_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "devmodel/dm.h"

#define TB_CLAIMS_MAX 64
#define TB_GSI_MAX    32

struct tb_claim {
    enum ioreq_range_type type;
    uint64_t start, end;
    bool live;
};

struct tb {
    struct event_base *base;
    struct ferry_dm *dm;
    /* backend */
    struct tb_claim claims[TB_CLAIMS_MAX];
    unsigned nr_claims;
    int claim_fail;             /* next claim returns this if non-zero */
    bool irqfd_ok;              /* accept irqfds (else -ENOSYS: line calls) */
    int irqfd_fd[TB_GSI_MAX], resample_fd[TB_GSI_MAX];
    bool line[TB_GSI_MAX];
    unsigned line_raises[TB_GSI_MAX];
    unsigned line_calls[TB_GSI_MAX];  /* irq_line calls, any level */
    unsigned shutdowns;
    unsigned msis;              /* MSIs delivered through the backend */
    int msi_fail;               /* the backend's MSI calls return this */
    uint64_t msi_address;
    uint32_t msi_data;
    enum ioreq_shutdown_reason reason;
    uint32_t code;
    bool sleep_ok;              /* the backend has S3 (else no sleep op: -ENOSYS) */
    int sleep_fail;             /* its sleep calls return this */
    unsigned suspends, wakes;   /* sleep calls: S3, WAKE */
    bool fake_clock;
    uint64_t clock_ns;
    int64_t wall_ns;
    unsigned log_lines;         /* lines the device model logged */
    GString *log;               /* and the lines themselves */
};

/* A device model on a fresh event base; irqfd_ok picks the delivery path. */
void tb_init(struct tb *t, bool irqfd_ok);
void tb_fini(struct tb *t);
/* Add a device from "k=v,..." options (NULL: none); fails the test on error. */
struct ferry_dm_device *tb_add(struct tb *t, const char *type, const char *id,
                               const char *opts);
int tb_try_add(struct tb *t, const char *type, const char *id, const char *opts);
uint64_t tb_in(struct tb *t, uint16_t port, unsigned size);
void tb_out(struct tb *t, uint16_t port, unsigned size, uint64_t val);
/* A claim of [start, end] of type is live. */
bool tb_claimed(const struct tb *t, enum ioreq_range_type type, uint64_t start, uint64_t end);
/* Drain an irqfd eventfd: edges/assertions delivered since last time. */
uint64_t tb_irqfd_count(struct tb *t, uint32_t gsi);
/* PCI config through an ioreq, as ferry-hv sends it. */
uint32_t tb_cfg_read(struct tb *t, unsigned dev, unsigned fn, unsigned reg, unsigned size);
void tb_cfg_write(struct tb *t, unsigned dev, unsigned fn, unsigned reg, unsigned size,
                  uint32_t val);
/* Run the event loop until *flag (or up to ms milliseconds). */
void tb_loop_until(struct tb *t, bool (*done)(struct tb *t, void *arg), void *arg,
                   unsigned ms);

TCase *dm_framework_tcase(void);
TCase *dm_control_tcase(void);
TCase *dm_uart_tcase(void);
TCase *dm_rtc_tcase(void);
TCase *dm_pm_tcase(void);
TCase *dm_misc_tcase(void);
TCase *dm_pci_tcase(void);
TCase *dm_testdevs_tcase(void);
TCase *dm_state_tcase(void);

#endif
