// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The VM: /dev/kvm, capabilities, the in-kernel irqchip and PIT, and guest
 * RAM.  RAM is one memfd mapped MAP_SHARED | MAP_NORESERVE, so creating a
 * guest touches none of it and device models can map the same memfd for
 * DMA.  KVM memslots cost time and kernel memory per GiB even if never
 * touched, so only the RAM the guest needs to boot is registered up front
 * (all of it for a guest of at most 1 GiB); the rest is cut into 1 GiB
 * slots registered when the guest first touches them (the access exits as
 * MMIO, vcpu.c registers the slot and completes the access against the
 * memfd).
 */
#include "hypervisor/hv.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define vm_log(vm, lvl, ...) ferry_logf((vm)->cfg.log, (vm)->cfg.log_opaque, lvl, __VA_ARGS__)

static int kvm_check_caps(struct ferry_vm *vm)
{
    static const struct { int cap; const char *name; } need[] = {
        { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
        { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
        { KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
        { KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
        { KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
        { KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
        { KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI" },
    };
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0) {
            vm_log(vm, FERRY_LOG_ERROR, "/dev/kvm: missing capability %s", need[i].name);
            return -ENOTSUP;
        }
    }
    return 0;
}

/* RAM regions: below the VGA hole, up to the PCI hole, above 4 GiB. */
static int vm_layout(struct ferry_vm *vm)
{
    uint64_t mem = vm->cfg.memory;

    vm->low_end = mem < HV_LOW_RAM_END_MAX ? mem : HV_LOW_RAM_END_MAX;
    vm->ram_size = mem;
    vm->nr_regions = 0;
    vm->regions[vm->nr_regions++] = (struct hv_ram_region){ 0, HV_VGA_HOLE_START, 0 };
    vm->regions[vm->nr_regions++] = (struct hv_ram_region){
        HV_VGA_HOLE_END, vm->low_end - HV_VGA_HOLE_END, HV_VGA_HOLE_END };
    if (mem > vm->low_end)
        vm->regions[vm->nr_regions++] = (struct hv_ram_region){
            HV_HIGH_RAM_BASE, mem - vm->low_end, vm->low_end };
    return 0;
}

int hv_vm_create(const struct ferry_vm_config *cfg, struct ferry_vm **out)
{
    struct ferry_vm *vm;
    int rc;

    *out = NULL;
    {
        char why[128];

        if (hv_memory_check(cfg->memory, why, sizeof(why)) < 0) {
            ferry_logf(cfg->log, cfg->log_opaque, FERRY_LOG_ERROR, "memory size %s", why);
            return -EINVAL;
        }
    }
    if (cfg->nr_vcpus < 1 || cfg->nr_vcpus > HV_VCPUS_MAX) {
        ferry_logf(cfg->log, cfg->log_opaque, FERRY_LOG_ERROR,
                   "%u vcpus: must be 1..%d", cfg->nr_vcpus, HV_VCPUS_MAX);
        return -EINVAL;
    }
    vm = calloc(1, sizeof(*vm));
    if (!vm)
        return -ENOMEM;
    vm->cfg = *cfg;
    vm->kvm_fd = vm->vm_fd = vm->memfd = vm->done_fd = -1;
    vm->ram = MAP_FAILED;
    for (unsigned i = 0; i < HV_VCPUS_MAX; i++)
        vm->vcpus[i].fd = -1;
    pthread_mutex_init(&vm->slot_lock, NULL);
    pthread_mutex_init(&vm->unclaimed_lock, NULL);
    pthread_mutex_init(&vm->sleep_lock, NULL);
    pthread_cond_init(&vm->sleep_cond, NULL);
    vm->send_rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(1000, 5);

    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0) {
        rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "/dev/kvm: cannot open: %s%s", strerror(errno),
               errno == ENOENT ? " (no KVM on this host: kvm module not loaded?)" : "");
        goto fail;
    }
    rc = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (rc != KVM_API_VERSION) {
        vm_log(vm, FERRY_LOG_ERROR, "/dev/kvm: API version %d, need %d", rc, KVM_API_VERSION);
        rc = -ENOTSUP;
        goto fail;
    }
    rc = kvm_check_caps(vm);
    if (rc)
        goto fail;
    vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vm->run_size <= 0) {
        rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "/dev/kvm: KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
        goto fail;
    }
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "/dev/kvm: KVM_CREATE_VM: %s", strerror(errno));
        goto fail;
    }

    vm_layout(vm);
    vm->memfd = memfd_create("ferry-guest-ram", MFD_CLOEXEC);
    if (vm->memfd < 0) {
        rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "guest ram: memfd_create: %s", strerror(errno));
        goto fail;
    }
    if (ftruncate(vm->memfd, (off_t)vm->ram_size) < 0) {
        rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "guest ram: ftruncate to 0x%llx: %s",
               (unsigned long long)vm->ram_size, strerror(errno));
        goto fail;
    }
    vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_NORESERVE, vm->memfd, 0);
    if (vm->ram == MAP_FAILED) {
        rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "guest ram: mmap 0x%llx bytes: %s",
               (unsigned long long)vm->ram_size, strerror(errno));
        goto fail;
    }
    /* Guest RAM is not worth a core dump of hundreds of GiB. */
    madvise(vm->ram, vm->ram_size, MADV_DONTDUMP);

    vm->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->done_fd < 0) {
        rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "eventfd: %s", strerror(errno));
        goto fail;
    }
    vm->nr_vcpus = cfg->nr_vcpus;
    hv_e820_build(vm);
    *out = vm;
    return 0;
fail:
    hv_vm_destroy(vm);
    return rc < 0 ? rc : -EIO;
}

/*
 * Cut RAM into memslots: everything below eager_end as it comes, the rest
 * in 1 GiB-aligned pieces.  More pieces than KVM has slots: bigger pieces.
 */
static int vm_make_slots(struct ferry_vm *vm)
{
    int max_slots = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
    uint64_t chunk = HV_LAZY_SLOT_SIZE;
    unsigned n;

    if (max_slots <= 0)
        max_slots = 32;
    for (;;) {
        n = 0;
        for (unsigned r = 0; r < vm->nr_regions; r++) {
            uint64_t a = vm->regions[r].gpa, end = a + vm->regions[r].size;
            while (a < end) {
                uint64_t next = (a / chunk + 1) * chunk;
                if (a < vm->eager_end && next > vm->eager_end)
                    next = vm->eager_end;
                if (next > end)
                    next = end;
                if (vm->slots) {
                    struct hv_slot *s = &vm->slots[n];
                    s->gpa = a;
                    s->size = next - a;
                    s->offset = vm->regions[r].offset + (a - vm->regions[r].gpa);
                    s->id = n;
                    atomic_init(&s->registered, false);
                }
                n++;
                a = next;
            }
        }
        if (vm->slots)
            break;
        if (n + 4 > (unsigned)max_slots) {
            chunk *= 2;
            continue;
        }
        vm->slots = calloc(n, sizeof(*vm->slots));
        if (!vm->slots)
            return -ENOMEM;
    }
    vm->nr_slots = n;
    return 0;
}

int hv_vm_register_slot(struct ferry_vm *vm, struct hv_slot *slot)
{
    struct kvm_userspace_memory_region mr = {
        .slot = slot->id,
        .guest_phys_addr = slot->gpa,
        .memory_size = slot->size,
        .userspace_addr = (uintptr_t)(vm->ram + slot->offset),
    };
    int rc = 0;

    pthread_mutex_lock(&vm->slot_lock);
    if (slot->refused) {
        rc = slot->refused;
    } else if (!atomic_load(&slot->registered)) {
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0) {
            rc = slot->refused = -errno;
            vm_log(vm, FERRY_LOG_ERROR, "memslot %u [0x%llx, +0x%llx): %s; its accesses go "
                   "through exits from now on", slot->id, (unsigned long long)slot->gpa,
                   (unsigned long long)slot->size, strerror(errno));
        } else {
            atomic_store(&slot->registered, true);
            rc = 1;
        }
    }
    pthread_mutex_unlock(&vm->slot_lock);
    return rc;
}

/*
 * KVM's TSS and identity-map pages, the in-kernel IOAPIC/LAPIC/PIC and the
 * PIT.  Set up after the boot memslots: with an irqchip in place every
 * memslot change costs milliseconds here (measured: 3-12 ms against
 * 0.03-0.4 ms before it), so the up-front slots go in first.
 */
static int vm_create_irqchip(struct ferry_vm *vm)
{
    /* Order matters: TSS, identity map and irqchip before the first vCPU. */
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)HV_TSS_ADDR) < 0) {
        int rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "kvm: KVM_SET_TSS_ADDR: %s", strerror(errno));
        return rc;
    }
    uint64_t ident = HV_IDENTITY_MAP_ADDR;
    if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0) {
        int rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "kvm: KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
        return rc;
    }
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        int rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "kvm: KVM_CREATE_IRQCHIP: %s", strerror(errno));
        return rc;
    }
    if (!vm->cfg.no_pit && ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_PIT2) > 0) {
        struct kvm_pit_config pit = { .flags = 0 };
        if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) == 0)
            vm->have_pit = true;
        else
            vm_log(vm, FERRY_LOG_WARNING, "kvm: KVM_CREATE_PIT2: %s; no PIT", strerror(errno));
    }
    return hv_sleep_capture_platform(vm);
}

int hv_vm_commit_memory(struct ferry_vm *vm, uint64_t needed_end)
{
    uint64_t eager = needed_end > HV_EAGER_MIN ? needed_end : HV_EAGER_MIN;
    int rc;

    eager = (eager + (2ull << 20) - 1) & ~((2ull << 20) - 1);
    /*
     * A memslot registered once the guest runs costs milliseconds (with the
     * irqchip in place), one registered now a fraction of that for up to
     * 1 GiB (bench/vm-start: a 64 MiB guest touching its RAM took several
     * ms longer on demand than eager).  So a guest whose RAM fits in one
     * on-demand slot gets all of it now: waiting would save it less than
     * its first touch costs.
     */
    if (vm->cfg.eager_memory || vm->ram_size <= HV_LAZY_SLOT_SIZE)
        eager = UINT64_MAX;
    vm->eager_end = eager;
    rc = vm_make_slots(vm);
    if (rc)
        return rc;
    for (unsigned i = 0; i < vm->nr_slots; i++) {
        if (vm->slots[i].gpa + vm->slots[i].size > vm->eager_end)
            continue;
        rc = hv_vm_register_slot(vm, &vm->slots[i]);
        if (rc < 0)
            return rc;
    }
    return vm_create_irqchip(vm);
}

int hv_vm_register_all(struct ferry_vm *vm)
{
    int n = 0;

    for (unsigned i = 0; i < vm->nr_slots; i++) {
        if (atomic_load(&vm->slots[i].registered))
            continue;
        int rc = hv_vm_register_slot(vm, &vm->slots[i]);
        if (rc > 0)
            n += rc;        /* a refused slot was logged; the others still go in */
    }
    return n;
}

struct hv_slot *hv_vm_find_slot(struct ferry_vm *vm, uint64_t gpa)
{
    unsigned lo = 0, hi = vm->nr_slots;

    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        struct hv_slot *s = &vm->slots[mid];
        if (gpa < s->gpa)
            hi = mid;
        else if (gpa - s->gpa >= s->size)
            lo = mid + 1;
        else
            return s;
    }
    return NULL;
}

void *hv_vm_gpa_ptr(struct ferry_vm *vm, uint64_t gpa, uint64_t len)
{
    for (unsigned r = 0; r < vm->nr_regions; r++) {
        const struct hv_ram_region *reg = &vm->regions[r];
        if (gpa >= reg->gpa && gpa - reg->gpa <= reg->size &&
            len <= reg->size - (gpa - reg->gpa))
            return vm->ram + reg->offset + (gpa - reg->gpa);
    }
    return NULL;
}

int hv_vm_memory_regions(struct ferry_vm *vm, struct ioreq_msg_memory_reply *m)
{
    memset(m, 0, sizeof(*m));
    for (unsigned r = 0; r < vm->nr_regions && r < IOREQ_MEMORY_MAX_REGIONS; r++) {
        m->region[r].gpa = vm->regions[r].gpa;
        m->region[r].size = vm->regions[r].size;
        m->region[r].offset = vm->regions[r].offset;
        m->nr_regions++;
    }
    return vm->memfd;
}

void hv_vm_end(struct ferry_vm *vm, enum hv_end why, unsigned code)
{
    int none = HV_END_NONE;

    if (atomic_compare_exchange_strong(&vm->end, &none, (int)why))
        atomic_store(&vm->end_code, code);
    atomic_store(&vm->stopping, true);
    hv_sleep_notify_end(vm);
    uint64_t one = 1;
    if (write(vm->done_fd, &one, sizeof(one)) < 0) {
        /* The counter cannot overflow from a handful of writes. */
    }
}

int hv_vm_irq_line(struct ferry_vm *vm, uint32_t gsi, bool level)
{
    struct kvm_irq_level irq = { .irq = gsi, .level = level };

    if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
        return -errno;
    return 0;
}

int hv_vm_signal_msi(struct ferry_vm *vm, uint64_t address, uint32_t data)
{
    struct kvm_msi msi = {
        .address_lo = (uint32_t)address, .address_hi = (uint32_t)(address >> 32), .data = data,
    };

    /* 1: delivered, 0: the guest blocked it (e.g. no destination): both are not errors. */
    if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
        return -errno;
    return 0;
}

/* The whole routing table: KVM's default for the PICs and the IOAPIC, then the MSI routes. */
static int vm_commit_routes(struct ferry_vm *vm)
{
    unsigned n = 16 + HV_IOAPIC_PINS;

    for (unsigned i = 0; i < HV_MSI_ROUTES_MAX; i++)
        n += vm->msi_routes[i].used;
    struct kvm_irq_routing *t = calloc(1, sizeof(*t) + n * sizeof(t->entries[0]));
    if (!t)
        return -ENOMEM;
    unsigned k = 0;
    for (uint32_t gsi = 0; gsi < HV_IOAPIC_PINS; gsi++) {
        t->entries[k++] = (struct kvm_irq_routing_entry){
            .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
            .u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi } };
        if (gsi < 16)
            t->entries[k++] = (struct kvm_irq_routing_entry){
                .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
                .u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                               .pin = gsi % 8 } };
    }
    for (unsigned i = 0; i < HV_MSI_ROUTES_MAX; i++) {
        const struct hv_msi_route *m = &vm->msi_routes[i];
        if (!m->used)
            continue;
        t->entries[k++] = (struct kvm_irq_routing_entry){
            .gsi = HV_MSI_GSI_BASE + i, .type = KVM_IRQ_ROUTING_MSI,
            .u.msi = { .address_lo = (uint32_t)m->address,
                       .address_hi = (uint32_t)(m->address >> 32), .data = m->data } };
    }
    t->nr = k;
    int rc = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
    free(t);
    if (rc)
        vm_log(vm, FERRY_LOG_WARNING, "kvm: KVM_SET_GSI_ROUTING (%u entries): %s", k,
               strerror(-rc));
    return rc;
}

int hv_vm_msi_route(struct ferry_vm *vm, uint64_t address, uint32_t data, int fd, bool assign,
                    uint32_t *gsi)
{
    struct kvm_irqfd irqfd = { .fd = (uint32_t)fd };
    int rc;

    if (!vm->msi_routes) {
        vm->msi_routes = calloc(HV_MSI_ROUTES_MAX, sizeof(*vm->msi_routes));
        if (!vm->msi_routes)
            return -ENOMEM;
    }
    if (!assign) {
        unsigned i = *gsi - HV_MSI_GSI_BASE;
        if (*gsi < HV_MSI_GSI_BASE || i >= HV_MSI_ROUTES_MAX || !vm->msi_routes[i].used)
            return -ENOENT;
        irqfd.gsi = *gsi;
        irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
        (void)ioctl(vm->vm_fd, KVM_IRQFD, &irqfd);
        vm->msi_routes[i].used = false;
        return vm_commit_routes(vm);
    }
    unsigned i;
    for (i = 0; i < HV_MSI_ROUTES_MAX && vm->msi_routes[i].used; i++)
        ;
    if (i == HV_MSI_ROUTES_MAX)
        return -ENOSPC;
    vm->msi_routes[i] = (struct hv_msi_route){ true, address, data };
    rc = vm_commit_routes(vm);
    if (rc == 0) {
        irqfd.gsi = HV_MSI_GSI_BASE + i;
        if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
            rc = -errno;
            vm_log(vm, FERRY_LOG_WARNING, "irqfd for msi 0x%llx/0x%x on gsi %u: %s",
                   (unsigned long long)address, data, irqfd.gsi, strerror(errno));
        }
    }
    if (rc) {
        vm->msi_routes[i].used = false;
        (void)vm_commit_routes(vm);
        return rc;
    }
    *gsi = HV_MSI_GSI_BASE + i;
    return 0;
}

int hv_vm_irqfd(struct ferry_vm *vm, uint32_t gsi, int fd, int resample_fd, bool assign)
{
    struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi };

    if (!assign)
        irqfd.flags |= KVM_IRQFD_FLAG_DEASSIGN;
    else if (resample_fd >= 0) {
        irqfd.flags |= KVM_IRQFD_FLAG_RESAMPLE;
        irqfd.resamplefd = (uint32_t)resample_fd;
    }
    if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
        int rc = -errno;
        vm_log(vm, FERRY_LOG_WARNING, "irqfd gsi %u %s: %s", gsi,
               assign ? "assign" : "deassign", strerror(errno));
        return rc;
    }
    return 0;
}

void hv_vm_destroy(struct ferry_vm *vm)
{
    if (!vm)
        return;
    for (unsigned i = 0; i < HV_VCPUS_MAX; i++) {
        if (vm->vcpus[i].run)
            munmap(vm->vcpus[i].run, (size_t)vm->run_size);
        if (vm->vcpus[i].fd >= 0)
            close(vm->vcpus[i].fd);
    }
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    if (vm->ram != MAP_FAILED)
        munmap(vm->ram, vm->ram_size);
    if (vm->memfd >= 0)
        close(vm->memfd);
    if (vm->done_fd >= 0)
        close(vm->done_fd);
    free(vm->slots);
    free(vm->cpuid);
    hv_sleep_free(vm);
    pthread_cond_destroy(&vm->sleep_cond);
    pthread_mutex_destroy(&vm->sleep_lock);
    free(vm->msi_routes);
    pthread_mutex_destroy(&vm->slot_lock);
    pthread_mutex_destroy(&vm->unclaimed_lock);
    free(vm);
}

int hv_memory_check(uint64_t size, char *why, size_t why_len)
{
    if (size >= HV_MEMORY_MIN && size <= HV_MEMORY_MAX && !(size & 0xfff))
        return 0;
    snprintf(why, why_len, "%llu bytes: must be " HV_MEMORY_RANGE_TEXT,
             (unsigned long long)size);
    return -ERANGE;
}

int hv_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    if (!s || !*s || *s == '-')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s)
        return -EINVAL;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    case '\0': break;
    default: return -EINVAL;
    }
    if (*end == 'i' && shift)
        end++;
    if ((*end == 'b' || *end == 'B') && shift)
        end++;
    if (*end)
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    *out = (uint64_t)v << shift;
    return 0;
}
