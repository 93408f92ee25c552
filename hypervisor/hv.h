/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-hv internals: one VM on /dev/kvm.
 *
 *   vm.c      KVM fds, capabilities, guest RAM (one memfd) and its memslots,
 *             registered eagerly for what the guest needs to boot (all of
 *             a guest of at most 1 GiB) and on demand (1 GiB slots) for the
 *             rest
 *   vcpu.c    one thread per vCPU, kicks (signal + immediate_exit), exits
 *   io.c      exit -> ioreq: in-process handlers, PCI CF8/CFC and ECAM,
 *             the ioreq router, unclaimed accounting
 *   loader.c  `real` flat images and `pvh` ELF kernels, E820, hvm_start_info
 *   multiboot.c  multiboot (v1) kernels and their info block; entry detection
 *   cpu.c     the CPU model: KVM's supported CPUID with feature edits
 *   sleep.c   ACPI S3: vCPUs parked while suspended, the firmware's resume
 *             path (power-on state, FACS waking vector) on wake-up
 *   main.c    the ferry-hv program
 *
 * Everything returns 0 or -errno; errors are described through the log
 * callback given at creation.
 */
#ifndef FERRY_HV_H
#define FERRY_HV_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "acpi/acpi.h"
#include "common/ferry-log.h"
#include "hypervisor/hv-exit.h"
#include "hypervisor/memmap.h"
#include "ioreq/ioreq.h"

#define HV_VCPUS_MAX            64
#define HV_E820_MAX             16
#define HV_UNCLAIMED_MAX        64      /* distinct places counted one by one */
#define HV_LAZY_SLOT_SIZE       (1ull << 30)
#define HV_EAGER_MIN            (16ull << 20)
#define HV_IOAPIC_PINS          24      /* GSIs 0..23: the IOAPIC (and 0..15 the PICs) */
#define HV_MSI_GSI_BASE         HV_IOAPIC_PINS
#define HV_MSI_ROUTES_MAX       1000    /* KVM allows 1024 GSIs in all */

#define HV_KICK_SIGNAL          (SIGRTMIN + 1)

struct ferry_vm;
struct kvm_cpuid2;
struct hv_vcpu_reset;
struct hv_platform_reset;

/* How the boot vCPU resumes from S3 (sleep.c). */
enum hv_resume_mode { HV_RESUME_REAL, HV_RESUME_PROT32 };

/* How the guest ended (first reason wins). */
enum hv_end {
    HV_END_NONE = 0,
    HV_END_POWEROFF,        /* ACPI S5 or a server's shutdown(poweroff) */
    HV_END_DEBUG_EXIT,      /* the debug exit port: code is the status */
    HV_END_REBOOT,
    HV_END_CRASH,           /* triple fault, emulation failure, server crash */
    HV_END_STOPPED,         /* stopped from outside (SIGTERM, SIGINT) */
    HV_END_ERROR,           /* the VMM itself failed */
};

struct hv_e820 {
    uint64_t addr, size;
    uint32_t type;          /* XEN_HVM_MEMMAP_TYPE_* (same values as E820) */
};

struct hv_ram_region {
    uint64_t gpa, size, offset; /* offset in the memfd */
};

struct hv_slot {
    uint64_t gpa, size, offset;
    uint32_t id;
    atomic_bool registered;
    int refused;                /* -errno KVM gave; then never tried again (slot_lock) */
};

/*
 * An in-process device: same ranges machinery as the ioreq servers.
 * Register them before the vCPUs start; lookups take no lock.
 */
struct hv_io_handler {
    const char *name;
    /* Emulate req (count is 1); reads store into req->data. */
    void (*access)(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque);
    void *opaque;
};

struct hv_unclaimed {
    uint8_t type;           /* IOREQ_RANGE_* */
    uint64_t key;           /* port, 4 KiB MMIO page, or SBDF */
    uint64_t reads, writes;
};

struct ferry_vm_config {
    uint64_t memory;            /* bytes of guest RAM */
    unsigned nr_vcpus;
    bool eager_memory;          /* register every memslot up front */
    bool no_pit;                /* no in-kernel PIT (QEMU's -machine pit=off) */
    ferry_log_fn log;
    void *log_opaque;
};

struct ferry_vcpu {
    struct ferry_vm *vm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool thread_started;
    uint64_t exits;
    uint64_t fixup_rip;         /* rip of the last emulation failure fixed by registering */
    struct hv_vcpu_reset *reset; /* power-on state, for an S3 resume (sleep.c) */
};

struct ferry_vm {
    struct ferry_vm_config cfg;
    int kvm_fd, vm_fd, memfd;
    int run_size;
    bool have_pit;

    /* Guest RAM: one memfd, mapped once, MAP_SHARED | MAP_NORESERVE. */
    uint8_t *ram;
    uint64_t ram_size;              /* bytes in the memfd */
    uint64_t low_end;               /* end of RAM below the PCI hole */
    struct hv_ram_region regions[4];
    unsigned nr_regions;
    struct hv_slot *slots;
    unsigned nr_slots;
    uint64_t eager_end;             /* RAM below this is registered up front */
    pthread_mutex_t slot_lock;
    atomic_uint lazy_registered;

    struct hv_e820 e820[HV_E820_MAX];
    unsigned nr_e820;

    struct ferry_vcpu vcpus[HV_VCPUS_MAX];
    unsigned nr_vcpus;

    /* Exit routing. */
    struct ioreq_rangeset *local[IOREQ_RANGE_NR];
    struct ioreq_router *router;        /* NULL: everything unclaimed */
    atomic_uint_fast32_t cf8;
    pthread_mutex_t unclaimed_lock;
    struct hv_unclaimed unclaimed[HV_UNCLAIMED_MAX];
    unsigned nr_unclaimed;
    uint64_t unclaimed_other;
    struct ferry_ratelimit send_rl;         /* guarded by unclaimed_lock */
    struct hv_io_handler debug_console, debug_exit;

    /* Lifecycle. */
    atomic_bool stopping;
    atomic_int end;                 /* enum hv_end */
    atomic_uint end_code;
    int done_fd;                    /* eventfd: written once the guest ends */

    /* ACPI S3 (sleep.c): vCPUs park on sleep_cond while asleep. */
    pthread_mutex_t sleep_lock;
    pthread_cond_t sleep_cond;
    atomic_bool asleep;
    unsigned parked;                /* vCPU threads parked (sleep_lock) */
    uint64_t suspends, wakes;       /* (sleep_lock) */
    enum hv_resume_mode resume_mode;
    uint64_t resume_vector;
    uint64_t facs_gpa;              /* the FACS ferry-hv placed; 0: none */
    struct hv_platform_reset *platform_reset;   /* irqchip and PIT at power-on */
    /* MSI routes for irqfds: GSI HV_MSI_GSI_BASE + i (control thread only). */
    struct hv_msi_route { bool used; uint64_t address; uint32_t data; } *msi_routes;

    /* The CPUID every vCPU gets (its APIC ID patched in); NULL: KVM's as it is. */
    struct kvm_cpuid2 *cpuid;
};

/* vm.c */
FERRY_MUST_CHECK int hv_vm_create(const struct ferry_vm_config *cfg, struct ferry_vm **out);
/*
 * Registers what the guest needs to boot (or everything, eager_memory),
 * then creates the in-kernel irqchip and PIT.  Before hv_vcpus_create.
 */
FERRY_MUST_CHECK int hv_vm_commit_memory(struct ferry_vm *vm, uint64_t needed_end);
void hv_vm_destroy(struct ferry_vm *vm);
/* Host pointer for [gpa, gpa+len) if it lies in one RAM region, else NULL. */
void *hv_vm_gpa_ptr(struct ferry_vm *vm, uint64_t gpa, uint64_t len);
/* The slot holding gpa, or NULL if gpa is not RAM. */
struct hv_slot *hv_vm_find_slot(struct ferry_vm *vm, uint64_t gpa);
/*
 * Give KVM the slot: 1 if this call did, 0 if it was already registered, or
 * the -errno KVM refused it with (logged once; a refused slot is not tried
 * again, its accesses go on through the MMIO path).
 */
int hv_vm_register_slot(struct ferry_vm *vm, struct hv_slot *slot);
/* Registers every slot not registered or refused yet; returns how many it registered. */
int hv_vm_register_all(struct ferry_vm *vm);
/* For the router's memory op: regions of guest RAM in the memfd. */
int hv_vm_memory_regions(struct ferry_vm *vm, struct ioreq_msg_memory_reply *regions);
/* Record the first end reason and wake the main loop; stops the vCPUs. */
void hv_vm_end(struct ferry_vm *vm, enum hv_end why, unsigned code);
int hv_vm_irq_line(struct ferry_vm *vm, uint32_t gsi, bool level);
int hv_vm_irqfd(struct ferry_vm *vm, uint32_t gsi, int fd, int resample_fd, bool assign);
/* Inject one MSI (address/data as the guest programmed them) through the LAPIC. */
int hv_vm_signal_msi(struct ferry_vm *vm, uint64_t address, uint32_t data);
/*
 * Route a GSI of its own to the MSI (address, data) and wire fd to it
 * (KVM_SET_GSI_ROUTING + KVM_IRQFD; *gsi gets it), or undo that for *gsi.
 * Control thread only.
 */
int hv_vm_msi_route(struct ferry_vm *vm, uint64_t address, uint32_t data, int fd, bool assign,
                    uint32_t *gsi);

/* vcpu.c */
FERRY_MUST_CHECK int hv_vcpus_create(struct ferry_vm *vm);
/* AUTO: pvh for an ELF with a PVH note, else multiboot if the image has a multiboot header. */
enum hv_entry { HV_ENTRY_REAL, HV_ENTRY_PVH, HV_ENTRY_MULTIBOOT, HV_ENTRY_AUTO };
struct hv_boot {
    enum hv_entry entry;
    uint64_t rip;
    uint64_t rbx;       /* pvh: hvm_start_info; multiboot: the info block */
    uint64_t rax;       /* multiboot: 0x2badb002 */
};
FERRY_MUST_CHECK int hv_vcpus_setup_boot(struct ferry_vm *vm, const struct hv_boot *boot);
FERRY_MUST_CHECK int hv_vcpus_start(struct ferry_vm *vm);
/* Kick every vCPU out of KVM_RUN and join the threads. */
void hv_vcpus_stop(struct ferry_vm *vm);

/* io.c */
FERRY_MUST_CHECK int hv_io_init(struct ferry_vm *vm);
void hv_io_fini(struct ferry_vm *vm);
FERRY_MUST_CHECK int hv_io_register(struct ferry_vm *vm, enum ioreq_range_type type,
                                    uint64_t start, uint64_t end,
                                    const struct hv_io_handler *h);
/* Route one access (count 1) from vcpu; reads get req->data. */
void hv_io_dispatch(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req);
/* Port I/O exit, incl. CF8/CFC. data points into the kvm_run page. */
void hv_io_port(struct ferry_vm *vm, unsigned vcpu, uint16_t port, unsigned size,
                bool is_write, uint8_t *data);
/* String port I/O exit: count elements of size in data (KVM's data page). */
void hv_io_port_rep(struct ferry_vm *vm, unsigned vcpu, uint16_t port, unsigned size,
                    uint32_t count, bool is_write, uint8_t *data);
/* MMIO exit, incl. ECAM; lazy RAM is handled by the caller. */
void hv_io_mmio(struct ferry_vm *vm, unsigned vcpu, uint64_t gpa, unsigned len,
                bool is_write, uint8_t *data);
/* Debug console (0xe9) and debug exit port; out is where console bytes go. */
FERRY_MUST_CHECK int hv_io_add_debug_ports(struct ferry_vm *vm, int console_fd);
void hv_io_log_unclaimed(struct ferry_vm *vm);

/* sleep.c */
/* Power-on state of the irqchip and PIT (after they are created) and of one vCPU. */
FERRY_MUST_CHECK int hv_sleep_capture_platform(struct ferry_vm *vm);
FERRY_MUST_CHECK int hv_sleep_capture_vcpu(struct ferry_vcpu *v);
void hv_sleep_free(struct ferry_vm *vm);
/* The router's sleep op: S3 suspend or wake-up (0 or -errno, why says why not). */
int hv_vm_sleep(struct ferry_vm *vm, enum ioreq_sleep_state state, char *why, size_t why_len);
/* On a vCPU thread while the guest is asleep: park until woken (or the guest ends). */
void hv_sleep_park(struct ferry_vcpu *v);
/* The guest ends: let parked vCPU threads go. */
void hv_sleep_notify_end(struct ferry_vm *vm);
/*
 * The FACS in an ACPI blob ferry-hv built (RSDP at its start, laid out for
 * base): its guest-physical address, or 0.
 */
uint64_t hv_acpi_find_facs(const uint8_t *blob, size_t len, uint64_t base);

/* loader.c */
#define HV_MODULES_MAX          32
struct hv_module {
    const char *path;
    const char *args;               /* NULL: none */
};
/* "FILE[,ARGS]" -> m (pointers into the string s, which is modified). */
int hv_module_parse(char *s, struct hv_module *m);
struct hv_load_config {
    const char *image;
    enum hv_entry entry;
    const char *cmdline;
    const struct hv_module *modules; /* --module FILE[,ARGS]: pvh and multiboot */
    unsigned nr_modules;
    bool no_acpi;                   /* no ACPI tables (rsdp_paddr 0) */
    const char *const *acpi_tables; /* NULL-terminated files of extra ACPI tables, or NULL */
    uint64_t rsdp;                  /* set by hv_load */
};
/*
 * Loads the image into guest RAM, fills the E820 map and (pvh) the
 * hvm_start_info; sets *boot and *needed_end (RAM that must be registered
 * before the first instruction).  why gets a one-line reason on failure.
 */
FERRY_MUST_CHECK int hv_load(struct ferry_vm *vm, const struct hv_load_config *lc,
                             struct hv_boot *boot, uint64_t *needed_end,
                             char *why, size_t why_len);
/* Exposed for unit tests: parse an in-memory ELF for its PVH entry. */
int hv_elf_pvh_entry(const uint8_t *img, size_t size, uint32_t *entry,
                     char *why, size_t why_len);
void hv_e820_build(struct ferry_vm *vm);
/*
 * Builds the ACPI tables, with the extra tables read from the files in
 * tables (NULL-terminated, may be NULL), into the ACPI area; *rsdp gets the
 * RSDP's address, why a one-line reason on failure.
 */
int hv_acpi_place(struct ferry_vm *vm, const char *const *tables, uint64_t *rsdp, char *why,
                  size_t why_len);
/*
 * A regular file of at most max bytes into *buf (malloc'd, *size bytes);
 * why says "PATH: ..." on failure, what names the kind ("an image").
 */
int hv_file_read(const char *path, uint64_t max, const char *what, uint8_t **buf,
                 size_t *size, char *why, size_t why_len);

/*
 * acpi-files.c: ACPI table files (ferry-hv --acpi-table, ferry acpi dump
 * --table) as acpi_config.extra_tables.  Load reads each file (at most
 * ACPI_EXTRA_TABLES_MAX files of at most ACPI_EXTRA_TABLE_SIZE_MAX bytes)
 * and points cfg at it, each table named "file PATH" for libacpi's
 * messages; why names the file at fault.
 */
struct hv_acpi_files {
    uint32_t nr;
    char *name[ACPI_EXTRA_TABLES_MAX];
    uint8_t *data[ACPI_EXTRA_TABLES_MAX];
};
FERRY_MUST_CHECK int hv_acpi_files_load(struct hv_acpi_files *f, struct acpi_config *cfg,
                                        const char *const *paths, char *why, size_t why_len);
void hv_acpi_files_free(struct hv_acpi_files *f);

/* multiboot.c */
struct hv_mb_header {
    uint32_t offset;                /* in the file */
    uint32_t flags;
    uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr; /* flag 16 */
};
/*
 * The multiboot header in the first 8192 bytes: 0, -ENOENT if there is no
 * magic there, -ENOEXEC with why set if the header is bad or asks for what
 * Ferry cannot honour.
 */
int hv_mb_header_find(const uint8_t *img, size_t size, struct hv_mb_header *h, char *why,
                      size_t why_len);
/* Header, ELF or address fields, and entry checked against the file (fuzzing, unit tests). */
int hv_mb_image_check(const uint8_t *img, size_t size, uint64_t *entry, char *why,
                      size_t why_len);
/*
 * A BIOS's hand-over state for a multiboot guest (hypervisor/bios-state.c):
 * a real-mode IVT whose handlers EOI and IRET (the loader writes it before
 * the image), then, once the irqchip exists, the 8259s at vectors 0x08/0x70
 * with only IRQ 0 and 2 open and the 8254 at 18.2 Hz.
 */
FERRY_MUST_CHECK int hv_bios_ivt_write(struct ferry_vm *vm, char *why, size_t why_len);
FERRY_MUST_CHECK int hv_bios_chips_set(struct ferry_vm *vm, char *why, size_t why_len);
FERRY_MUST_CHECK int hv_load_multiboot(struct ferry_vm *vm, const struct hv_load_config *lc,
                                       struct hv_boot *boot, uint64_t *needed_end, char *why,
                                       size_t why_len);
/* AUTO -> PVH or MULTIBOOT by what the image is; why on failure to read it. */
int hv_entry_detect(const char *image, enum hv_entry *entry, char *why, size_t why_len);
const char *hv_entry_name(enum hv_entry entry);

/* cpu.c: the CPU model, "host[,+FEATURE|-FEATURE]..." by /proc/cpuinfo names. */
#define HV_CPU_EDITS_MAX        64
struct hv_cpu_model {
    unsigned nr_edits;
    struct { uint16_t feature; bool on; } edits[HV_CPU_EDITS_MAX];
};
/* 0, or -EINVAL with why naming the bad part. */
int hv_cpu_model_parse(const char *spec, struct hv_cpu_model *m, char *why, size_t why_len);
/*
 * KVM's supported CPUID with the model's edits (and the features that
 * depend on a removed one) applied, the hypervisor bit set: *out is
 * malloc'd.  -ENOTSUP with why if the model asks for a feature KVM cannot
 * give; -errno if KVM fails.
 */
int hv_cpuid_build(int kvm_fd, const struct hv_cpu_model *m, struct kvm_cpuid2 **out,
                   char *why, size_t why_len);
/* One line per leaf: "cpuid LEAF SUBLEAF EAX EBX ECX EDX  flag flag ...". */
void hv_cpuid_print(const struct kvm_cpuid2 *c, FILE *f);
/* Index of a feature by name, or -1; and the name of index i (NULL past the end). */
int hv_cpu_feature_find(const char *name);
const char *hv_cpu_feature_name(unsigned i);
/* The feature, dependency and XSAVE tables name only known features, each once (unit tests). */
int hv_cpu_tables_check(char *why, size_t why_len);
/* Applies m to c in place (for unit tests: c stands for KVM's supported CPUID). */
int hv_cpuid_apply(struct kvm_cpuid2 *c, const struct hv_cpu_model *m, char *why,
                   size_t why_len);

/* Sizes like 64M, 1G, 1T, 4096 (bytes), 2K. 0 or -EINVAL/-ERANGE. */
int hv_parse_size(const char *s, uint64_t *out);
/* Guest RAM in HV_MEMORY_MIN..HV_MEMORY_MAX, a multiple of 4 KiB: 0, or
 * -ERANGE with why saying so (HV_MEMORY_RANGE_TEXT). */
int hv_memory_check(uint64_t size, char *why, size_t why_len);

/* cgroup.c: scheduling weight and cap per guest */
#define HV_CPU_WEIGHT_MAX   10000   /* cgroup v2's cpu.weight range, 1..10000 */
#define HV_CPU_CAP_MAX      (100 * HV_VCPUS_MAX)    /* percent of one host CPU */
struct hv_cgroup {
    int version;                    /* 2 (unified) or 1; 0 before setup */
    char base[PATH_MAX];            /* ferry-hv's own cgroup there */
    char guest[PATH_MAX];           /* BASE/ferry-PID-vcpus: ferry-hv, weight and cap */
    char dm[PATH_MAX];              /* BASE/ferry-PID-dm: its device model */
    bool guest_made, dm_made, moved;
};
/* BASE from /proc/self/mountinfo and /proc/self/cgroup texts, for the v2 or
 * the v1 cpu hierarchy: 0, or -ENOENT when there is none. */
int hv_cgroup_base_find(const char *mountinfo, const char *proc_cgroup, bool v2, char *out,
                        size_t out_len);
/* Make both groups, set weight (1..HV_CPU_WEIGHT_MAX, 0: leave) and cap
 * (percent of one CPU, 0: none) on the guest's and move ferry-hv into it;
 * on failure nothing is left behind and why says what failed. */
FERRY_MUST_CHECK int hv_cgroup_setup(struct hv_cgroup *cg, unsigned weight, unsigned cap,
                                     char *why, size_t why_len);
FERRY_MUST_CHECK int hv_cgroup_attach_dm(struct hv_cgroup *cg, pid_t pid, char *why,
                                         size_t why_len);
/* Move ferry-hv back and remove both groups (the device model must have
 * exited): 0, or -EBUSY when a group could not be removed. */
int hv_cgroup_cleanup(struct hv_cgroup *cg);

#endif /* FERRY_HV_H */
