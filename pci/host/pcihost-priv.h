/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libferry-pcihost internals shared by its source files. */
#ifndef FERRY_PCIHOST_PRIV_H
#define FERRY_PCIHOST_PRIV_H

#include <limits.h>
#include <setjmp.h>

#include "pci/host/pcihost.h"

#define PCIHOST_PATH_MAX PATH_MAX
/* libpci's soname (its ABI): what pcihost_scan loads when not linked */
#define PCIHOST_LIBPCI "libpci.so.3"
#define PCIHOST_FILE_MAX 4096    /* largest sysfs/proc text we read at once */

struct ferry_pcihost {
    struct ferry_pcihost_ops ops;
    char sysfs_root[PCIHOST_PATH_MAX];
    char proc_root[PCIHOST_PATH_MAX];
    char state_dir[PCIHOST_PATH_MAX];
    char dump_file[PCIHOST_PATH_MAX];   /* "" = live */
    char ids_file[PCIHOST_PATH_MAX];    /* "" = libpci default */
    struct ferry_pcihost_dev *devs;
    struct pcihost_cfg *cfg;            /* config bytes, parallel to devs */
    size_t ndevs;
    unsigned hidden;
    /* libpci reports fatal errors through a callback that must not return. */
    jmp_buf pci_jmp;
    char err[512];
};

/* Set h->err, log it, return err (a negative errno). */
int pcihost_fail(struct ferry_pcihost *h, int err, const char *fmt, ...)
    FERRY_PRINTF(3, 4);
void pcihost_log(struct ferry_pcihost *h, enum ferry_log_level lvl,
                 const char *fmt, ...) FERRY_PRINTF(3, 4);

/* sysfs/proc helpers: paths are relative to the configured roots.
 * Reads strip one trailing newline.  0 or -errno. */
int pcihost_path(struct ferry_pcihost *h, char *out, size_t len, const char *root,
                 const char *fmt, ...) FERRY_PRINTF(5, 6);
/* A whole small file (sysfs attribute, state file) into buf as a string,
 * its last newline dropped; 0 or -errno. */
int pcihost_read_file(const char *path, char *buf, size_t len);
int pcihost_sys_read(struct ferry_pcihost *h, char *buf, size_t len,
                     const char *fmt, ...) FERRY_PRINTF(4, 5);
int pcihost_sys_link_base(struct ferry_pcihost *h, char *buf, size_t len,
                          const char *fmt, ...) FERRY_PRINTF(4, 5);
int pcihost_sys_write(struct ferry_pcihost *h, const char *val,
                      const char *fmt, ...) FERRY_PRINTF(3, 4);
bool pcihost_sys_exists(struct ferry_pcihost *h, const char *fmt, ...) FERRY_PRINTF(2, 3);

int pcihost_dev_index(const struct ferry_pcihost *h, const struct ferry_pcihost_dev *d);

/* Config bytes captured at scan time, for check. */
#define PCIHOST_CFG_MAX 4096
struct pcihost_cfg {
    unsigned len;                       /* bytes readable */
    uint8_t b[PCIHOST_CFG_MAX];
};
int pcihost_cfg_read(const struct ferry_pcihost *h, size_t dev, unsigned off,
                     unsigned len, uint32_t *val);

#endif
