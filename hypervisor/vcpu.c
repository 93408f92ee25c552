// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vCPUs: one thread each, running KVM_RUN and decoding exits.
 *
 * Stopping a vCPU: set run->immediate_exit, then send the kick signal to
 * its thread.  Inside KVM_RUN the signal makes it return EINTR; between the
 * stop check and KVM_RUN, immediate_exit does.  This also stops a guest
 * spinning in `vmcall`, which never exits by itself on this KVM.
 */
#include "hypervisor/hv.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#define vm_log(vm, lvl, ...) ferry_logf((vm)->cfg.log, (vm)->cfg.log_opaque, lvl, __VA_ARGS__)

/* The VM's CPUID (the CPU model, cpu.c) with this vCPU's APIC ID. */
static int vcpu_set_cpuid(struct ferry_vm *vm, struct ferry_vcpu *v)
{
    char why[256];
    int rc = 0;

    if (!vm->cpuid) {
        rc = hv_cpuid_build(vm->kvm_fd, NULL, &vm->cpuid, why, sizeof(why));
        if (rc) {
            vm_log(vm, FERRY_LOG_ERROR, "%s", why);
            return rc;
        }
    }
    size_t sz = sizeof(struct kvm_cpuid2) + vm->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = malloc(sz);
    if (!c)
        return -ENOMEM;
    memcpy(c, vm->cpuid, sz);
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1)
            e->ebx = (e->ebx & 0x00ffffffu) | (v->index << 24);
        else if (e->function == 0xb || e->function == 0x1f)
            e->edx = v->index;
    }
    if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
        rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "vcpu %u: KVM_SET_CPUID2: %s", v->index, strerror(errno));
    }
    free(c);
    return rc;
}

int hv_vcpus_create(struct ferry_vm *vm)
{
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct ferry_vcpu *v = &vm->vcpus[i];
        int rc;

        v->vm = vm;
        v->index = i;
        v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
        if (v->fd < 0) {
            rc = -errno;
            vm_log(vm, FERRY_LOG_ERROR, "vcpu %u: KVM_CREATE_VCPU: %s", i, strerror(errno));
            return rc;
        }
        v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
        if (v->run == MAP_FAILED) {
            rc = -errno;
            v->run = NULL;
            vm_log(vm, FERRY_LOG_ERROR, "vcpu %u: mmap kvm_run: %s", i, strerror(errno));
            return rc;
        }
        rc = vcpu_set_cpuid(vm, v);
        if (rc)
            return rc;
        rc = hv_sleep_capture_vcpu(v);
        if (rc)
            return rc;
    }
    return 0;
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
    *s = (struct kvm_segment){
        .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
        .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
    };
}

int hv_vcpus_setup_boot(struct ferry_vm *vm, const struct hv_boot *boot)
{
    struct ferry_vcpu *v = &vm->vcpus[0];
    struct kvm_sregs sregs;
    struct kvm_regs regs;

    /* Only the boot vCPU: the others wait for INIT/SIPI, as on a PC. */
    if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
        vm_log(vm, FERRY_LOG_ERROR, "vcpu 0: KVM_GET_SREGS: %s", strerror(errno));
        return -errno;
    }
    memset(&regs, 0, sizeof(regs));
    regs.rflags = 0x2;
    regs.rip = boot->rip;
    if (boot->entry == HV_ENTRY_REAL) {
        struct kvm_segment *segs[] = { &sregs.cs, &sregs.ds, &sregs.es,
                                       &sregs.fs, &sregs.gs, &sregs.ss };
        for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
            segs[i]->selector = 0;
            segs[i]->base = 0;
        }
        regs.rsp = HV_REAL_LOAD_ADDR;
        regs.rdx = 0x80;            /* boot drive, by convention */
    } else {
        /* PVH and multiboot: flat 32-bit protected mode, paging off, EBX = info. */
        seg_flat(&sregs.cs, 0x08, 0xb);
        seg_flat(&sregs.ds, 0x10, 0x3);
        sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
        sregs.tr = (struct kvm_segment){ .base = 0, .limit = 0x67, .selector = 0x18,
                                         .type = 0xb, .present = 1, .s = 0 };
        sregs.cr0 = 0x11;           /* PE | ET */
        sregs.cr4 = 0;
        sregs.efer = 0;
        regs.rbx = boot->rbx;
        regs.rax = boot->rax;   /* multiboot: 0x2badb002 */
    }
    if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0) {
        vm_log(vm, FERRY_LOG_ERROR, "vcpu 0: KVM_SET_SREGS: %s", strerror(errno));
        return -errno;
    }
    if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
        vm_log(vm, FERRY_LOG_ERROR, "vcpu 0: KVM_SET_REGS: %s", strerror(errno));
        return -errno;
    }
    return 0;
}

static uint64_t vcpu_rip(struct ferry_vcpu *v)
{
    struct kvm_regs regs;

    if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
        return ~0ull;
    return regs.rip;
}

/*
 * An access to RAM whose slot is not registered yet: register the slot
 * and complete this one access against the memfd.  Returns false if gpa
 * is not RAM.
 */
static bool vcpu_lazy_ram(struct ferry_vcpu *v, uint64_t gpa, unsigned len,
                          bool is_write, uint8_t *data)
{
    struct ferry_vm *vm = v->vm;
    struct hv_slot *slot = hv_vm_find_slot(vm, gpa);
    uint8_t *p;

    if (!slot)
        return false;
    p = hv_vm_gpa_ptr(vm, gpa, len);
    if (!p)
        return false;
    if (!atomic_load(&slot->registered)) {
        if (hv_vm_register_slot(vm, slot) == 1) {
            atomic_fetch_add(&vm->lazy_registered, 1);
            vm_log(vm, FERRY_LOG_DEBUG, "vcpu %u: registered memslot %u [0x%llx, +0x%llx) "
                   "on first touch at 0x%llx", v->index, slot->id,
                   (unsigned long long)slot->gpa, (unsigned long long)slot->size,
                   (unsigned long long)gpa);
        }
    }
    if (is_write)
        memcpy(p, data, len);
    else
        memcpy(data, p, len);
    return true;
}

/*
 * KVM cannot emulate everything against MMIO: an instruction fetch from a
 * slot not registered yet, or an instruction its emulator lacks, ends in
 * an emulation failure.  If RAM is still unregistered, register the slot
 * holding the instruction (or, failing that, all of RAM) and run the
 * instruction again; a second failure at the same place is real.
 */
static bool vcpu_fix_emulation(struct ferry_vcpu *v)
{
    struct ferry_vm *vm = v->vm;
    struct kvm_sregs sregs;
    struct kvm_regs regs;

    if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
        return false;
    if (v->fixup_rip == regs.rip + 1)
        return false;
    struct kvm_translation tr = { .linear_address = sregs.cs.base + regs.rip };
    if (ioctl(v->fd, KVM_TRANSLATE, &tr) == 0 && tr.valid) {
        struct hv_slot *slot = hv_vm_find_slot(vm, tr.physical_address);
        if (slot && !atomic_load(&slot->registered) && hv_vm_register_slot(vm, slot) == 1) {
            atomic_fetch_add(&vm->lazy_registered, 1);
            vm_log(vm, FERRY_LOG_DEBUG, "vcpu %u: registered memslot %u for an instruction "
                   "fetch at 0x%llx", v->index, slot->id,
                   (unsigned long long)tr.physical_address);
            v->fixup_rip = regs.rip + 1;
            return true;
        }
    }
    int n = hv_vm_register_all(vm);
    if (n <= 0)
        return false;
    atomic_fetch_add(&vm->lazy_registered, (unsigned)n);
    vm_log(vm, FERRY_LOG_INFO, "vcpu %u: emulation failure at rip 0x%llx while RAM is still "
           "unregistered: registered the remaining %d memslots", v->index,
           (unsigned long long)regs.rip, n);
    v->fixup_rip = regs.rip + 1;
    return true;
}

static void vcpu_crash(struct ferry_vcpu *v, const char *what, unsigned long long detail)
{
    vm_log(v->vm, FERRY_LOG_ERROR, "vcpu %u: %s (0x%llx) at rip 0x%llx; stopping the guest",
           v->index, what, detail, (unsigned long long)vcpu_rip(v));
    hv_vm_end(v->vm, HV_END_CRASH, 0);
}

static void *vcpu_thread(void *arg)
{
    struct ferry_vcpu *v = arg;
    struct ferry_vm *vm = v->vm;
    struct kvm_run *run = v->run;
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, HV_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    while (!atomic_load(&vm->stopping)) {
        if (atomic_load(&vm->asleep)) {
            hv_sleep_park(v);
            continue;
        }
        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                run->immediate_exit = 0;
                continue;
            }
            vm_log(vm, FERRY_LOG_ERROR, "vcpu %u: KVM_RUN: %s", v->index, strerror(errno));
            hv_vm_end(vm, HV_END_ERROR, 0);
            break;
        }
        v->exits++;
        if (run->exit_reason != KVM_EXIT_INTERNAL_ERROR)
            v->fixup_rip = 0;
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            unsigned size = run->io.size;
            if (size != 1 && size != 2 && size != 4)
                break;
            if ((uint64_t)run->io.data_offset + (uint64_t)run->io.count * size >
                (uint64_t)vm->run_size)
                break;
            hv_io_port_rep(vm, v->index, run->io.port, size, run->io.count,
                           run->io.direction == KVM_EXIT_IO_OUT, data);
            break;
        }
        case KVM_EXIT_MMIO:
            if (run->mmio.len == 0 || run->mmio.len > 8)
                break;
            if (vcpu_lazy_ram(v, run->mmio.phys_addr, run->mmio.len, run->mmio.is_write,
                              run->mmio.data))
                break;
            hv_io_mmio(vm, v->index, run->mmio.phys_addr, run->mmio.len,
                       run->mmio.is_write, run->mmio.data);
            break;
        case KVM_EXIT_HLT:
        case KVM_EXIT_IRQ_WINDOW_OPEN:
        case KVM_EXIT_INTR:
            break;
        case KVM_EXIT_SHUTDOWN:
            vcpu_crash(v, "triple fault", 0);
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION && vcpu_fix_emulation(v))
                break;
            vcpu_crash(v, "kvm internal error (emulation failure?)", run->internal.suberror);
            break;
        case KVM_EXIT_FAIL_ENTRY:
            vcpu_crash(v, "vm entry failed",
                       run->fail_entry.hardware_entry_failure_reason);
            break;
        case KVM_EXIT_SYSTEM_EVENT:
            if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
                hv_vm_end(vm, HV_END_POWEROFF, 0);
            else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
                hv_vm_end(vm, HV_END_REBOOT, 0);
            else
                vcpu_crash(v, "system event", run->system_event.type);
            break;
        default:
            vcpu_crash(v, "unhandled exit reason", run->exit_reason);
            break;
        }
    }
    return NULL;
}

static void kick_handler(int sig)
{
    (void)sig;
}

int hv_vcpus_start(struct ferry_vm *vm)
{
    struct sigaction sa = { .sa_handler = kick_handler };

    sigemptyset(&sa.sa_mask);
    if (sigaction(HV_KICK_SIGNAL, &sa, NULL) < 0)
        return -errno;
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct ferry_vcpu *v = &vm->vcpus[i];
        int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
        if (rc) {
            vm_log(vm, FERRY_LOG_ERROR, "vcpu %u: pthread_create: %s", i, strerror(rc));
            hv_vcpus_stop(vm);
            return -rc;
        }
        v->thread_started = true;
    }
    return 0;
}

void hv_vcpus_stop(struct ferry_vm *vm)
{
    atomic_store(&vm->stopping, true);
    hv_sleep_notify_end(vm);
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct ferry_vcpu *v = &vm->vcpus[i];
        if (!v->thread_started)
            continue;
        __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        pthread_kill(v->thread, HV_KICK_SIGNAL);
    }
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct ferry_vcpu *v = &vm->vcpus[i];
        if (!v->thread_started)
            continue;
        pthread_join(v->thread, NULL);
        v->thread_started = false;
    }
}
