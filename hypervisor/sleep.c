// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ACPI S3 (suspend to RAM) for ferry-hv guests, asked for by the device
 * model's PM block through the ioreq SLEEP message.
 *
 * Suspend: every vCPU is kicked out of KVM_RUN and parks on a condition
 * variable; guest RAM is left as it is.  Wake: ferry-hv plays the part a
 * PC firmware plays on an S3 resume (SeaBIOS's resume path, after QEMU
 * reset the machine): the interrupt controllers (PIC, IOAPIC, PIT) and
 * every vCPU go back to their power-on state (captured right after they
 * were created), the application processors wait for INIT/SIPI again, and
 * the boot vCPU starts at the FACS waking vector:
 *
 *   X_Firmware_Waking_Vector != 0 (FACS version >= 1): 32-bit flat
 *       protected mode, paging off, at that address (the FACS never
 *       offers 64BIT_WAKE_SUPPORTED_F, so the OSPM's 64BIT_WAKE_F is not
 *       honoured);
 *   else Firmware_Waking_Vector != 0: real mode, CS = vector >> 4,
 *       IP = vector & 0xf, the other segments and general registers 0,
 *       interrupts off (as SeaBIOS's jump to the vector leaves them);
 *   both 0 (or the FACS gone): there is nothing to resume, so the guest
 *       is rebooted, as a BIOS does when it finds no vector: ferry-hv
 *       ends with its reboot status.
 */
#include "hypervisor/hv.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define vm_log(vm, lvl, ...) ferry_logf((vm)->cfg.log, (vm)->cfg.log_opaque, lvl, __VA_ARGS__)

#define HV_WAKE_WAIT_MS     10000   /* for every vCPU to park before a wake-up */

/* FACS (ACPI 6.4 5.2.10) fields ferry-hv reads. */
#define FACS_LENGTH         4
#define FACS_WAKING_VECTOR  12
#define FACS_VERSION        32
#define FACS_X_WAKING_VECTOR 24
#define FACS_SIZE           64

struct hv_vcpu_reset {
    struct kvm_sregs sregs;
    struct kvm_fpu fpu;
    struct kvm_lapic_state lapic;
    struct kvm_mp_state mp;
    struct kvm_vcpu_events events;
    struct kvm_debugregs dregs;
    struct kvm_xcrs xcrs;
    bool have_events, have_dregs, have_xcrs;
};

struct hv_platform_reset {
    struct kvm_irqchip chip[3];         /* PIC master, PIC slave, IOAPIC */
    struct kvm_pit_state2 pit;
    bool have_pit;
};

static bool kvm_has(struct ferry_vm *vm, int cap)
{
    return ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, cap) > 0;
}

int hv_sleep_capture_platform(struct ferry_vm *vm)
{
    struct hv_platform_reset *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    for (unsigned i = 0; i < 3; i++) {
        p->chip[i].chip_id = i;
        if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &p->chip[i]) < 0) {
            int rc = -errno;
            vm_log(vm, FERRY_LOG_ERROR, "kvm: KVM_GET_IRQCHIP %u: %s", i, strerror(errno));
            free(p);
            return rc;
        }
    }
    p->have_pit = vm->have_pit && ioctl(vm->vm_fd, KVM_GET_PIT2, &p->pit) == 0;
    free(vm->platform_reset);
    vm->platform_reset = p;
    return 0;
}

int hv_sleep_capture_vcpu(struct ferry_vcpu *v)
{
    struct ferry_vm *vm = v->vm;
    struct hv_vcpu_reset *r = calloc(1, sizeof(*r));

    if (!r)
        return -ENOMEM;
    if (ioctl(v->fd, KVM_GET_SREGS, &r->sregs) < 0 || ioctl(v->fd, KVM_GET_FPU, &r->fpu) < 0 ||
        ioctl(v->fd, KVM_GET_LAPIC, &r->lapic) < 0 || ioctl(v->fd, KVM_GET_MP_STATE, &r->mp) < 0) {
        int rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "vcpu %u: reading its power-on state: %s", v->index,
               strerror(errno));
        free(r);
        return rc;
    }
    r->have_events = kvm_has(vm, KVM_CAP_VCPU_EVENTS) &&
                     ioctl(v->fd, KVM_GET_VCPU_EVENTS, &r->events) == 0;
    r->have_dregs = kvm_has(vm, KVM_CAP_DEBUGREGS) &&
                    ioctl(v->fd, KVM_GET_DEBUGREGS, &r->dregs) == 0;
    r->have_xcrs = kvm_has(vm, KVM_CAP_XCRS) && ioctl(v->fd, KVM_GET_XCRS, &r->xcrs) == 0;
    free(v->reset);
    v->reset = r;
    return 0;
}

void hv_sleep_free(struct ferry_vm *vm)
{
    for (unsigned i = 0; i < HV_VCPUS_MAX; i++) {
        free(vm->vcpus[i].reset);
        vm->vcpus[i].reset = NULL;
    }
    free(vm->platform_reset);
    vm->platform_reset = NULL;
}

/* Where the boot vCPU resumes; false if the FACS holds no vector. */
static bool facs_vector(struct ferry_vm *vm, enum hv_resume_mode *mode, uint64_t *vector)
{
    const uint8_t *f = vm->facs_gpa ? hv_vm_gpa_ptr(vm, vm->facs_gpa, FACS_SIZE) : NULL;
    uint32_t len, v32;
    uint64_t v64 = 0;

    /* Guest memory: read once, checked before use. */
    if (!f || memcmp(f, "FACS", 4))
        return false;
    memcpy(&len, f + FACS_LENGTH, 4);
    memcpy(&v32, f + FACS_WAKING_VECTOR, 4);
    if (len >= FACS_SIZE && f[FACS_VERSION] >= 1)
        memcpy(&v64, f + FACS_X_WAKING_VECTOR, 8);
    if (v64) {
        if (v64 > UINT32_MAX - 16)
            return false;           /* 32-bit protected mode cannot reach it */
        *mode = HV_RESUME_PROT32;
        *vector = v64;
        return true;
    }
    if (!v32 || v32 > 0xfffff)
        return false;               /* real mode reaches the first MiB only */
    *mode = HV_RESUME_REAL;
    *vector = v32;
    return true;
}

static void kick_all(struct ferry_vm *vm)
{
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct ferry_vcpu *v = &vm->vcpus[i];

        if (!v->thread_started)
            continue;
        __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        pthread_kill(v->thread, HV_KICK_SIGNAL);
    }
}

static unsigned started_vcpus(struct ferry_vm *vm)
{
    unsigned n = 0;

    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        n += vm->vcpus[i].thread_started;
    return n;
}

static int hv_vm_suspend(struct ferry_vm *vm, char *why, size_t why_len)
{
    pthread_mutex_lock(&vm->sleep_lock);
    if (vm->asleep) {
        pthread_mutex_unlock(&vm->sleep_lock);
        snprintf(why, why_len, "the guest is suspended already");
        return -EBUSY;
    }
    atomic_store(&vm->asleep, true);
    vm->suspends++;
    pthread_mutex_unlock(&vm->sleep_lock);
    kick_all(vm);
    vm_log(vm, FERRY_LOG_INFO, "S3: the guest is suspended to RAM (vcpus stopped)");
    return 0;
}

static int vcpu_resume_state(struct ferry_vcpu *v);

static void platform_reset(struct ferry_vm *vm)
{
    struct hv_platform_reset *p = vm->platform_reset;

    if (!p)
        return;
    for (unsigned i = 0; i < 3; i++) {
        struct kvm_irqchip c = p->chip[i];
        if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &c) < 0)
            vm_log(vm, FERRY_LOG_WARNING, "S3 wake: KVM_SET_IRQCHIP %u: %s", i, strerror(errno));
    }
    if (p->have_pit) {
        struct kvm_pit_state2 pit = p->pit;
        if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
            vm_log(vm, FERRY_LOG_WARNING, "S3 wake: KVM_SET_PIT2: %s", strerror(errno));
    }
}

static int hv_vm_wake(struct ferry_vm *vm, char *why, size_t why_len)
{
    enum hv_resume_mode mode;
    uint64_t vector;
    struct timespec deadline;
    unsigned want = started_vcpus(vm);
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += HV_WAKE_WAIT_MS / 1000;
    pthread_mutex_lock(&vm->sleep_lock);
    if (!vm->asleep) {
        pthread_mutex_unlock(&vm->sleep_lock);
        snprintf(why, why_len, "the guest is not suspended");
        return -EALREADY;
    }
    /* A vCPU still waits for a device model's answer at worst: not for long. */
    while (vm->parked < want && !atomic_load(&vm->stopping) && rc == 0)
        rc = pthread_cond_timedwait(&vm->sleep_cond, &vm->sleep_lock, &deadline);
    if (vm->parked < want) {
        pthread_mutex_unlock(&vm->sleep_lock);
        if (atomic_load(&vm->stopping)) {
            snprintf(why, why_len, "the guest is ending");
            return -ESHUTDOWN;
        }
        snprintf(why, why_len, "%u of %u vcpus stopped within %d ms", vm->parked, want,
                 HV_WAKE_WAIT_MS);
        return -ETIMEDOUT;
    }
    if (!facs_vector(vm, &mode, &vector)) {
        pthread_mutex_unlock(&vm->sleep_lock);
        vm_log(vm, FERRY_LOG_INFO, "S3 wake: %s: rebooting the guest, as a PC firmware does",
               vm->facs_gpa ? "the FACS waking vector is 0 (or out of reach)"
                            : "the guest has no FACS");
        hv_vm_end(vm, HV_END_REBOOT, 0);
        return 0;
    }
    platform_reset(vm);
    vm->resume_mode = mode;
    vm->resume_vector = vector;
    rc = 0;
    for (unsigned i = 0; i < vm->nr_vcpus && rc == 0; i++)
        if (vm->vcpus[i].thread_started)
            rc = vcpu_resume_state(&vm->vcpus[i]);
    vm->wakes++;
    atomic_store(&vm->asleep, false);
    pthread_cond_broadcast(&vm->sleep_cond);
    pthread_mutex_unlock(&vm->sleep_lock);
    if (rc) {
        snprintf(why, why_len, "cannot reset the vcpus: %s", strerror(-rc));
        hv_vm_end(vm, HV_END_CRASH, 0);
        return rc;
    }
    vm_log(vm, FERRY_LOG_INFO, "S3 wake: the guest resumes in %s mode at 0x%llx",
           mode == HV_RESUME_REAL ? "real" : "32-bit protected", (unsigned long long)vector);
    return 0;
}

int hv_vm_sleep(struct ferry_vm *vm, enum ioreq_sleep_state state, char *why, size_t why_len)
{
    if (atomic_load(&vm->stopping)) {
        snprintf(why, why_len, "the guest is ending");
        return -ESHUTDOWN;
    }
    return state == IOREQ_SLEEP_S3 ? hv_vm_suspend(vm, why, why_len)
                                   : hv_vm_wake(vm, why, why_len);
}

void hv_sleep_notify_end(struct ferry_vm *vm)
{
    pthread_mutex_lock(&vm->sleep_lock);
    pthread_cond_broadcast(&vm->sleep_cond);
    pthread_mutex_unlock(&vm->sleep_lock);
}

static void seg_real(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
    *s = (struct kvm_segment){
        .base = (uint64_t)sel << 4, .limit = 0xffff, .selector = sel, .type = type,
        .present = 1, .s = 1,
    };
}

static void seg_flat32(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
    *s = (struct kvm_segment){
        .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
        .present = 1, .db = 1, .s = 1, .g = 1,
    };
}

/*
 * A parked vCPU back to its power-on state, the boot vCPU then at the
 * vector.  Done by the waking thread while every vCPU is parked, so that
 * no resumed vCPU can send INIT/SIPI to one not reset yet.
 */
static int vcpu_resume_state(struct ferry_vcpu *v)
{
    struct ferry_vm *vm = v->vm;
    struct hv_vcpu_reset *r = v->reset;
    struct kvm_sregs sregs;
    struct kvm_regs regs = { .rflags = 0x2 };
    struct kvm_mp_state mp;
    struct kvm_lapic_state lapic;
    struct kvm_fpu fpu;
    const char *what = NULL;

    if (!r) {
        vm_log(vm, FERRY_LOG_ERROR, "vcpu %u: no power-on state to resume with", v->index);
        return -ENOENT;
    }
    sregs = r->sregs;
    mp = r->mp;
    lapic = r->lapic;
    fpu = r->fpu;
    if (v->index == 0) {
        /* The boot vCPU: the firmware jumps to the waking vector. */
        if (vm->resume_mode == HV_RESUME_REAL) {
            seg_real(&sregs.cs, (uint16_t)(vm->resume_vector >> 4), 0xb);
            seg_real(&sregs.ds, 0, 0x3);
            sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
            regs.rip = vm->resume_vector & 0xf;
        } else {
            seg_flat32(&sregs.cs, 0x08, 0xb);
            seg_flat32(&sregs.ds, 0x10, 0x3);
            sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
            sregs.cr0 = 0x11;       /* PE | ET */
            regs.rip = vm->resume_vector;
        }
        mp.mp_state = KVM_MP_STATE_RUNNABLE;
    } else {
        mp.mp_state = KVM_MP_STATE_UNINITIALIZED;   /* waits for INIT/SIPI */
    }
    if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
        what = "KVM_SET_REGS";
    else if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
        what = "KVM_SET_FPU";
    else if (r->have_xcrs && ioctl(v->fd, KVM_SET_XCRS, &r->xcrs) < 0)
        what = "KVM_SET_XCRS";
    else if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
        what = "KVM_SET_SREGS";
    else if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
        what = "KVM_SET_MP_STATE";
    else if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
        what = "KVM_SET_LAPIC";
    else if (r->have_events && ioctl(v->fd, KVM_SET_VCPU_EVENTS, &r->events) < 0)
        what = "KVM_SET_VCPU_EVENTS";
    else if (r->have_dregs && ioctl(v->fd, KVM_SET_DEBUGREGS, &r->dregs) < 0)
        what = "KVM_SET_DEBUGREGS";
    if (what) {
        int rc = -errno;
        vm_log(vm, FERRY_LOG_ERROR, "vcpu %u: S3 resume: %s: %s", v->index, what,
               strerror(errno));
        return rc;
    }
    return 0;
}

void hv_sleep_park(struct ferry_vcpu *v)
{
    struct ferry_vm *vm = v->vm;
    /* Complete the exit being handled (an OUT to PM1a_CNT) without running the guest. */
    __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    ioctl(v->fd, KVM_RUN, 0);
    __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);

    pthread_mutex_lock(&vm->sleep_lock);
    vm->parked++;
    pthread_cond_broadcast(&vm->sleep_cond);
    while (atomic_load(&vm->asleep) && !atomic_load(&vm->stopping))
        pthread_cond_wait(&vm->sleep_cond, &vm->sleep_lock);
    vm->parked--;
    pthread_mutex_unlock(&vm->sleep_lock);
}
