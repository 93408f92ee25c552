// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The framework's view of guest memory: the hypervisor's RAM regions
 * mapped once, for devices' DMA.
 */
#include "devmodel/dm-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>


/* ------------------------------------------------------------------ */
/* Guest memory                                                        */

int dm_set_guest_memory(struct ferry_dm *dm, int memfd,
                              const struct ioreq_msg_memory_reply *regions)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned n = regions->nr_regions;

    if (dm->nr_mem)
        return -EALREADY;
    if (n == 0 || n > IOREQ_MEMORY_MAX_REGIONS)
        return -EINVAL;
    for (unsigned i = 0; i < n; i++) {
        const __typeof__(regions->region[0]) *rg = &regions->region[i];

        if (rg->size == 0 || rg->gpa > UINT64_MAX - (rg->size - 1) ||
            rg->offset % (uint64_t)page || rg->size > (uint64_t)SIZE_MAX ||
            rg->offset > (uint64_t)INT64_MAX - rg->size)
            goto bad;
    }
    for (unsigned i = 0; i < n; i++) {
        void *p = mmap(NULL, regions->region[i].size, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_NORESERVE, memfd, (off_t)regions->region[i].offset);

        if (p == MAP_FAILED) {
            int err = errno;

            dm_log(dm, FERRY_LOG_ERROR, "cannot map guest ram 0x%" PRIx64 "+0x%" PRIx64 ": %s",
                   regions->region[i].gpa, regions->region[i].size, strerror(err));
            while (dm->nr_mem)
                munmap(dm->mem[dm->nr_mem - 1].hva, dm->mem[dm->nr_mem - 1].size),
                    dm->nr_mem--;
            return -err;
        }
        dm->mem[i] = (struct dm_memory){ .gpa = regions->region[i].gpa,
                                         .size = regions->region[i].size, .hva = p };
        dm->nr_mem++;
    }
    dm->memfd = fcntl(memfd, F_DUPFD_CLOEXEC, 3);
    dm->mem_table = *regions;
    return 0;
bad:
    dm_log(dm, FERRY_LOG_ERROR, "guest memory table from the hypervisor is malformed");
    return -EINVAL;
}

int dm_guest_memory_fd(struct ferry_dm *dm, struct ioreq_msg_memory_reply *regions)
{
    if (!dm->nr_mem || dm->memfd < 0)
        return -ENODEV;
    *regions = dm->mem_table;
    return dm->memfd;
}

static uint8_t *dma_ptr(struct ferry_dm *dm, uint64_t gpa, size_t len)
{
    if (len == 0)
        return NULL;
    for (unsigned i = 0; i < dm->nr_mem; i++) {
        struct dm_memory *m = &dm->mem[i];

        if (gpa >= m->gpa && gpa - m->gpa < m->size && len <= m->size - (gpa - m->gpa))
            return m->hva + (gpa - m->gpa);
    }
    return NULL;
}

int dm_dma_read(struct ferry_dm *dm, uint64_t gpa, void *buf, size_t len)
{
    uint8_t *p;

    if (!dm->nr_mem)
        return -ENODEV;
    p = dma_ptr(dm, gpa, len);
    if (!p) {
        dm_guest_log(dm, "dma read 0x%" PRIx64 "+0x%zx outside guest ram", gpa, len);
        return -EFAULT;
    }
    memcpy(buf, p, len);
    return 0;
}

int dm_dma_write(struct ferry_dm *dm, uint64_t gpa, const void *buf, size_t len)
{
    uint8_t *p;

    if (!dm->nr_mem)
        return -ENODEV;
    p = dma_ptr(dm, gpa, len);
    if (!p) {
        dm_guest_log(dm, "dma write 0x%" PRIx64 "+0x%zx outside guest ram", gpa, len);
        return -EFAULT;
    }
    memcpy(p, buf, len);
    return 0;
}
