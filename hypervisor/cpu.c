// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The CPU model: what CPUID the guest sees.
 *
 *   host                 KVM's supported CPUID (KVM_GET_SUPPORTED_CPUID) as
 *                        it is, the hypervisor bit set: ferry-hv's behaviour
 *                        before there was a model
 *   host,-x2apic,+avx2   with features removed or required, by the names
 *                        Linux prints in /proc/cpuinfo
 *
 * Without edits the guest gets exactly KVM's CPUID.  Removing a feature
 * removes what depends on it, after the dependencies
 * Linux declares in arch/x86/kernel/cpu/cpuid-deps.c (every avx512* needs
 * avx512f, ...), and the XSAVE state components that go with it (XCR0 in
 * leaf 0xd: AVX-512's opmask/ZMM components with avx512f, YMM with avx, PKRU
 * with pku).  Requiring a feature that KVM cannot give here, or one whose
 * prerequisite is removed, is an error that names it.
 */
#include "hypervisor/hv.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define HV_CPUID_MAX    256

enum { R_EAX, R_EBX, R_ECX, R_EDX };

struct cpu_feature {
    const char *name;
    uint32_t leaf;
    uint8_t subleaf, reg, bit;
};

/* Linux's /proc/cpuinfo names for the common leaves. */
static const struct cpu_feature features[] = {
    /* leaf 1 EDX */
    { "fpu", 1, 0, R_EDX, 0 }, { "vme", 1, 0, R_EDX, 1 }, { "de", 1, 0, R_EDX, 2 },
    { "pse", 1, 0, R_EDX, 3 }, { "tsc", 1, 0, R_EDX, 4 }, { "msr", 1, 0, R_EDX, 5 },
    { "pae", 1, 0, R_EDX, 6 }, { "mce", 1, 0, R_EDX, 7 }, { "cx8", 1, 0, R_EDX, 8 },
    { "apic", 1, 0, R_EDX, 9 }, { "sep", 1, 0, R_EDX, 11 }, { "mtrr", 1, 0, R_EDX, 12 },
    { "pge", 1, 0, R_EDX, 13 }, { "mca", 1, 0, R_EDX, 14 }, { "cmov", 1, 0, R_EDX, 15 },
    { "pat", 1, 0, R_EDX, 16 }, { "pse36", 1, 0, R_EDX, 17 }, { "pn", 1, 0, R_EDX, 18 },
    { "clflush", 1, 0, R_EDX, 19 }, { "dts", 1, 0, R_EDX, 21 }, { "acpi", 1, 0, R_EDX, 22 },
    { "mmx", 1, 0, R_EDX, 23 }, { "fxsr", 1, 0, R_EDX, 24 }, { "sse", 1, 0, R_EDX, 25 },
    { "sse2", 1, 0, R_EDX, 26 }, { "ss", 1, 0, R_EDX, 27 }, { "ht", 1, 0, R_EDX, 28 },
    { "tm", 1, 0, R_EDX, 29 }, { "ia64", 1, 0, R_EDX, 30 }, { "pbe", 1, 0, R_EDX, 31 },
    /* leaf 1 ECX */
    { "pni", 1, 0, R_ECX, 0 }, { "pclmulqdq", 1, 0, R_ECX, 1 }, { "dtes64", 1, 0, R_ECX, 2 },
    { "monitor", 1, 0, R_ECX, 3 }, { "ds_cpl", 1, 0, R_ECX, 4 }, { "vmx", 1, 0, R_ECX, 5 },
    { "smx", 1, 0, R_ECX, 6 }, { "est", 1, 0, R_ECX, 7 }, { "tm2", 1, 0, R_ECX, 8 },
    { "ssse3", 1, 0, R_ECX, 9 }, { "cid", 1, 0, R_ECX, 10 }, { "sdbg", 1, 0, R_ECX, 11 },
    { "fma", 1, 0, R_ECX, 12 }, { "cx16", 1, 0, R_ECX, 13 }, { "xtpr", 1, 0, R_ECX, 14 },
    { "pdcm", 1, 0, R_ECX, 15 }, { "pcid", 1, 0, R_ECX, 17 }, { "dca", 1, 0, R_ECX, 18 },
    { "sse4_1", 1, 0, R_ECX, 19 }, { "sse4_2", 1, 0, R_ECX, 20 }, { "x2apic", 1, 0, R_ECX, 21 },
    { "movbe", 1, 0, R_ECX, 22 }, { "popcnt", 1, 0, R_ECX, 23 },
    { "tsc_deadline_timer", 1, 0, R_ECX, 24 }, { "aes", 1, 0, R_ECX, 25 },
    { "xsave", 1, 0, R_ECX, 26 }, { "avx", 1, 0, R_ECX, 28 }, { "f16c", 1, 0, R_ECX, 29 },
    { "rdrand", 1, 0, R_ECX, 30 }, { "hypervisor", 1, 0, R_ECX, 31 },
    /* leaf 6 EAX */
    { "ida", 6, 0, R_EAX, 1 }, { "arat", 6, 0, R_EAX, 2 }, { "pln", 6, 0, R_EAX, 4 },
    { "pts", 6, 0, R_EAX, 6 },
    /* leaf 7.0 EBX */
    { "fsgsbase", 7, 0, R_EBX, 0 }, { "tsc_adjust", 7, 0, R_EBX, 1 }, { "sgx", 7, 0, R_EBX, 2 },
    { "bmi1", 7, 0, R_EBX, 3 }, { "hle", 7, 0, R_EBX, 4 }, { "avx2", 7, 0, R_EBX, 5 },
    { "fdp_excptn_only", 7, 0, R_EBX, 6 }, { "smep", 7, 0, R_EBX, 7 },
    { "bmi2", 7, 0, R_EBX, 8 }, { "erms", 7, 0, R_EBX, 9 }, { "invpcid", 7, 0, R_EBX, 10 },
    { "rtm", 7, 0, R_EBX, 11 }, { "cqm", 7, 0, R_EBX, 12 }, { "zero_fcs_fds", 7, 0, R_EBX, 13 },
    { "mpx", 7, 0, R_EBX, 14 }, { "rdt_a", 7, 0, R_EBX, 15 }, { "avx512f", 7, 0, R_EBX, 16 },
    { "avx512dq", 7, 0, R_EBX, 17 }, { "rdseed", 7, 0, R_EBX, 18 }, { "adx", 7, 0, R_EBX, 19 },
    { "smap", 7, 0, R_EBX, 20 }, { "avx512ifma", 7, 0, R_EBX, 21 },
    { "clflushopt", 7, 0, R_EBX, 23 }, { "clwb", 7, 0, R_EBX, 24 },
    { "intel_pt", 7, 0, R_EBX, 25 }, { "avx512pf", 7, 0, R_EBX, 26 },
    { "avx512er", 7, 0, R_EBX, 27 }, { "avx512cd", 7, 0, R_EBX, 28 },
    { "sha_ni", 7, 0, R_EBX, 29 }, { "avx512bw", 7, 0, R_EBX, 30 },
    { "avx512vl", 7, 0, R_EBX, 31 },
    /* leaf 7.0 ECX */
    { "avx512vbmi", 7, 0, R_ECX, 1 }, { "umip", 7, 0, R_ECX, 2 }, { "pku", 7, 0, R_ECX, 3 },
    { "ospke", 7, 0, R_ECX, 4 }, { "waitpkg", 7, 0, R_ECX, 5 },
    { "avx512_vbmi2", 7, 0, R_ECX, 6 }, { "user_shstk", 7, 0, R_ECX, 7 },
    { "gfni", 7, 0, R_ECX, 8 }, { "vaes", 7, 0, R_ECX, 9 }, { "vpclmulqdq", 7, 0, R_ECX, 10 },
    { "avx512_vnni", 7, 0, R_ECX, 11 }, { "avx512_bitalg", 7, 0, R_ECX, 12 },
    { "tme", 7, 0, R_ECX, 13 }, { "avx512_vpopcntdq", 7, 0, R_ECX, 14 },
    { "la57", 7, 0, R_ECX, 16 }, { "rdpid", 7, 0, R_ECX, 22 },
    { "bus_lock_detect", 7, 0, R_ECX, 24 }, { "cldemote", 7, 0, R_ECX, 25 },
    { "movdiri", 7, 0, R_ECX, 27 }, { "movdir64b", 7, 0, R_ECX, 28 },
    { "enqcmd", 7, 0, R_ECX, 29 }, { "sgx_lc", 7, 0, R_ECX, 30 },
    /* leaf 7.0 EDX */
    { "avx512_4vnniw", 7, 0, R_EDX, 2 }, { "avx512_4fmaps", 7, 0, R_EDX, 3 },
    { "fsrm", 7, 0, R_EDX, 4 }, { "avx512_vp2intersect", 7, 0, R_EDX, 8 },
    { "srbds_ctrl", 7, 0, R_EDX, 9 }, { "md_clear", 7, 0, R_EDX, 10 },
    { "serialize", 7, 0, R_EDX, 14 }, { "tsxldtrk", 7, 0, R_EDX, 16 },
    { "pconfig", 7, 0, R_EDX, 18 }, { "arch_lbr", 7, 0, R_EDX, 19 }, { "ibt", 7, 0, R_EDX, 20 },
    { "amx_bf16", 7, 0, R_EDX, 22 }, { "avx512_fp16", 7, 0, R_EDX, 23 },
    { "amx_tile", 7, 0, R_EDX, 24 }, { "amx_int8", 7, 0, R_EDX, 25 },
    { "flush_l1d", 7, 0, R_EDX, 28 }, { "arch_capabilities", 7, 0, R_EDX, 29 },
    /* leaf 7.1 EAX */
    { "avx_vnni", 7, 1, R_EAX, 4 }, { "avx512_bf16", 7, 1, R_EAX, 5 },
    /* leaf 0xd.1 EAX */
    { "xsaveopt", 0xd, 1, R_EAX, 0 }, { "xsavec", 0xd, 1, R_EAX, 1 },
    { "xgetbv1", 0xd, 1, R_EAX, 2 }, { "xsaves", 0xd, 1, R_EAX, 3 },
    { "xfd", 0xd, 1, R_EAX, 4 },
    /* leaf 0x80000001 EDX */
    { "syscall", 0x80000001, 0, R_EDX, 11 }, { "nx", 0x80000001, 0, R_EDX, 20 },
    { "mmxext", 0x80000001, 0, R_EDX, 22 }, { "fxsr_opt", 0x80000001, 0, R_EDX, 25 },
    { "pdpe1gb", 0x80000001, 0, R_EDX, 26 }, { "rdtscp", 0x80000001, 0, R_EDX, 27 },
    { "lm", 0x80000001, 0, R_EDX, 29 }, { "3dnowext", 0x80000001, 0, R_EDX, 30 },
    { "3dnow", 0x80000001, 0, R_EDX, 31 },
    /* leaf 0x80000001 ECX */
    { "lahf_lm", 0x80000001, 0, R_ECX, 0 }, { "cmp_legacy", 0x80000001, 0, R_ECX, 1 },
    { "svm", 0x80000001, 0, R_ECX, 2 }, { "extapic", 0x80000001, 0, R_ECX, 3 },
    { "cr8_legacy", 0x80000001, 0, R_ECX, 4 }, { "abm", 0x80000001, 0, R_ECX, 5 },
    { "sse4a", 0x80000001, 0, R_ECX, 6 }, { "misalignsse", 0x80000001, 0, R_ECX, 7 },
    { "3dnowprefetch", 0x80000001, 0, R_ECX, 8 }, { "osvw", 0x80000001, 0, R_ECX, 9 },
    { "ibs", 0x80000001, 0, R_ECX, 10 }, { "xop", 0x80000001, 0, R_ECX, 11 },
    { "skinit", 0x80000001, 0, R_ECX, 12 }, { "wdt", 0x80000001, 0, R_ECX, 13 },
    { "lwp", 0x80000001, 0, R_ECX, 15 }, { "fma4", 0x80000001, 0, R_ECX, 16 },
    { "tce", 0x80000001, 0, R_ECX, 17 }, { "nodeid_msr", 0x80000001, 0, R_ECX, 19 },
    { "tbm", 0x80000001, 0, R_ECX, 21 }, { "topoext", 0x80000001, 0, R_ECX, 22 },
    { "perfctr_core", 0x80000001, 0, R_ECX, 23 }, { "perfctr_nb", 0x80000001, 0, R_ECX, 24 },
    { "bpext", 0x80000001, 0, R_ECX, 26 }, { "ptsc", 0x80000001, 0, R_ECX, 27 },
    { "perfctr_llc", 0x80000001, 0, R_ECX, 28 }, { "mwaitx", 0x80000001, 0, R_ECX, 29 },
    /* leaf 0x80000007 EDX (invariant TSC) and 0x80000008 EBX */
    { "nonstop_tsc", 0x80000007, 0, R_EDX, 8 },
    { "clzero", 0x80000008, 0, R_EBX, 0 }, { "irperf", 0x80000008, 0, R_EBX, 1 },
    { "xsaveerptr", 0x80000008, 0, R_EBX, 2 }, { "rdpru", 0x80000008, 0, R_EBX, 4 },
    { "wbnoinvd", 0x80000008, 0, R_EBX, 9 },
};
#define NR_FEATURES (sizeof(features) / sizeof(features[0]))

/* feature needs depends (Linux's cpuid-deps.c, for the features above). */
static const struct { const char *feature, *depends; } deps[] = {
    { "fxsr", "fpu" }, { "xsaveopt", "xsave" }, { "xsavec", "xsave" }, { "xsaves", "xsave" },
    { "xgetbv1", "xsave" }, { "xfd", "xsave" }, { "avx", "xsave" }, { "pku", "xsave" },
    { "mpx", "xsave" }, { "cmov", "fxsr" }, { "mmx", "fxsr" }, { "mmxext", "mmx" },
    { "fxsr_opt", "fxsr" }, { "xsave", "fxsr" }, { "sse", "fxsr" }, { "sse2", "sse" },
    { "pni", "sse2" }, { "sse4_1", "sse2" }, { "sse4_2", "sse2" }, { "sse4a", "sse2" },
    { "pclmulqdq", "sse2" }, { "ssse3", "sse2" }, { "f16c", "sse2" }, { "aes", "sse2" },
    { "sha_ni", "sse2" }, { "fma", "avx" }, { "avx2", "avx" }, { "avx_vnni", "avx2" },
    { "avx512f", "avx" }, { "avx512ifma", "avx512f" }, { "avx512pf", "avx512f" },
    { "avx512er", "avx512f" }, { "avx512cd", "avx512f" }, { "avx512dq", "avx512f" },
    { "avx512bw", "avx512f" }, { "avx512vl", "avx512f" }, { "avx512vbmi", "avx512f" },
    { "avx512_vbmi2", "avx512vl" }, { "gfni", "avx512vl" }, { "vaes", "avx512vl" },
    { "vpclmulqdq", "avx512vl" }, { "avx512_vnni", "avx512vl" },
    { "avx512_bitalg", "avx512vl" }, { "avx512_4vnniw", "avx512f" },
    { "avx512_4fmaps", "avx512f" }, { "avx512_vpopcntdq", "avx512f" },
    { "avx512_vp2intersect", "avx512vl" }, { "avx512_bf16", "avx512vl" },
    { "avx512_fp16", "avx512bw" }, { "amx_bf16", "amx_tile" }, { "amx_int8", "amx_tile" },
    { "amx_tile", "xfd" }, { "ospke", "pku" }, { "x2apic", "apic" },
    { "tsc_deadline_timer", "apic" }, { "movdir64b", "movdiri" },
};

/* XSAVE state components (XCR0 bits, leaf 0xd) that go with a feature. */
static const struct { const char *feature; uint32_t xcr0; } xstate[] = {
    { "avx", 1u << 2 }, { "avx512f", 7u << 5 }, { "pku", 1u << 9 },
    { "amx_tile", 3u << 17 }, { "mpx", 3u << 3 },
};

int hv_cpu_feature_find(const char *name)
{
    for (unsigned i = 0; i < NR_FEATURES; i++)
        if (!strcmp(features[i].name, name))
            return (int)i;
    return -1;
}

const char *hv_cpu_feature_name(unsigned i)
{
    return i < NR_FEATURES ? features[i].name : NULL;
}

int hv_cpu_tables_check(char *why, size_t why_len)
{
    for (size_t i = 0; i < sizeof(deps) / sizeof(deps[0]); i++) {
        if (hv_cpu_feature_find(deps[i].feature) < 0 || hv_cpu_feature_find(deps[i].depends) < 0) {
            snprintf(why, why_len, "dependency %s -> %s names an unknown feature",
                     deps[i].feature, deps[i].depends);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < sizeof(xstate) / sizeof(xstate[0]); i++) {
        if (hv_cpu_feature_find(xstate[i].feature) < 0) {
            snprintf(why, why_len, "XSAVE component of unknown feature %s", xstate[i].feature);
            return -EINVAL;
        }
    }
    for (unsigned i = 0; i < NR_FEATURES; i++) {
        if (hv_cpu_feature_find(features[i].name) != (int)i) {
            snprintf(why, why_len, "feature %s is in the table twice", features[i].name);
            return -EINVAL;
        }
    }
    return 0;
}

int hv_cpu_model_parse(const char *spec, struct hv_cpu_model *m, char *why, size_t why_len)
{
    char *copy = strdup(spec), *save = NULL, *tok;
    int rc = 0;

    memset(m, 0, sizeof(*m));
    if (!copy)
        return -ENOMEM;
    tok = strtok_r(copy, ",", &save);
    if (!tok || strcmp(tok, "host")) {
        snprintf(why, why_len, "cpu model '%s': must start with 'host' (the only model: KVM's "
                 "supported CPUID), then ,+FEATURE or ,-FEATURE", spec);
        rc = -EINVAL;
        goto out;
    }
    while ((tok = strtok_r(NULL, ",", &save))) {
        bool on = *tok != '-';
        const char *name = (*tok == '-' || *tok == '+') ? tok + 1 : tok;
        int f = hv_cpu_feature_find(name);
        if (f < 0) {
            snprintf(why, why_len, "cpu model '%s': unknown feature '%s' (names as in "
                     "/proc/cpuinfo; --print-cpuid lists what this host gives)", spec, name);
            rc = -EINVAL;
            goto out;
        }
        if (m->nr_edits >= HV_CPU_EDITS_MAX) {
            snprintf(why, why_len, "cpu model '%s': more than %d feature edits", spec,
                     HV_CPU_EDITS_MAX);
            rc = -E2BIG;
            goto out;
        }
        m->edits[m->nr_edits].feature = (uint16_t)f;
        m->edits[m->nr_edits].on = on;
        m->nr_edits++;
    }
    /* strtok_r skips empty items: refuse "host,,x" and "host," as typos. */
    if (strstr(spec, ",,") || spec[strlen(spec) - 1] == ',') {
        snprintf(why, why_len, "cpu model '%s': an empty feature", spec);
        rc = -EINVAL;
    }
out:
    free(copy);
    return rc;
}

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t leaf,
                                           uint32_t subleaf)
{
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == leaf &&
            (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == subleaf))
            return e;
    }
    return NULL;
}

static uint32_t *cpuid_reg(struct kvm_cpuid_entry2 *e, unsigned reg)
{
    switch (reg) {
    case R_EAX: return &e->eax;
    case R_EBX: return &e->ebx;
    case R_ECX: return &e->ecx;
    default: return &e->edx;
    }
}

static bool feature_get(struct kvm_cpuid2 *c, unsigned f)
{
    struct kvm_cpuid_entry2 *e = cpuid_find(c, features[f].leaf, features[f].subleaf);

    return e && (*cpuid_reg(e, features[f].reg) >> features[f].bit & 1);
}

static void feature_set(struct kvm_cpuid2 *c, unsigned f, bool on)
{
    struct kvm_cpuid_entry2 *e = cpuid_find(c, features[f].leaf, features[f].subleaf);

    if (!e)
        return;
    uint32_t *r = cpuid_reg(e, features[f].reg);
    if (on)
        *r |= 1u << features[f].bit;
    else
        *r &= ~(1u << features[f].bit);
}

/*
 * XSAVE components of removed features out of leaf 0xd (XCR0 in 0xd.0 EAX,
 * the component's own subleaf); the maximum XSAVE size recomputed.
 */
static void cpuid_fix_xstate(struct kvm_cpuid2 *c, const bool *removed)
{
    struct kvm_cpuid_entry2 *d0 = cpuid_find(c, 0xd, 0);
    uint32_t drop = 0;

    if (!d0)
        return;
    if (removed[hv_cpu_feature_find("xsave")]) {
        for (unsigned i = 0; i < c->nent; i++)
            if (c->entries[i].function == 0xd)
                c->entries[i].eax = c->entries[i].ebx = c->entries[i].ecx =
                    c->entries[i].edx = 0;
        return;
    }
    for (size_t i = 0; i < sizeof(xstate) / sizeof(xstate[0]); i++)
        if (removed[hv_cpu_feature_find(xstate[i].feature)])
            drop |= xstate[i].xcr0;
    drop &= d0->eax;
    if (!drop)
        return;
    d0->eax &= ~drop;
    uint32_t max = 512 + 64;        /* legacy area and XSAVE header */
    for (unsigned bit = 2; bit < 32; bit++) {
        struct kvm_cpuid_entry2 *e = cpuid_find(c, 0xd, bit);
        if (!e || e->index != bit)
            continue;
        if (drop >> bit & 1)
            e->eax = e->ebx = e->ecx = e->edx = 0;
        else if (d0->eax >> bit & 1 && e->eax + e->ebx > max)
            max = e->eax + e->ebx;
    }
    d0->ecx = max;
    if (d0->ebx > max)
        d0->ebx = max;
}

int hv_cpuid_apply(struct kvm_cpuid2 *c, const struct hv_cpu_model *m, char *why,
                   size_t why_len)
{
    bool asked[NR_FEATURES] = { 0 };    /* the last edit of a feature was '+' */
    bool removed[NR_FEATURES] = { 0 };  /* the last edit was '-', or it needs one of those */
    bool changed;

    for (unsigned i = 0; m && i < m->nr_edits; i++) {
        unsigned f = m->edits[i].feature;
        if (f >= NR_FEATURES)
            return -EINVAL;
        asked[f] = m->edits[i].on;
        removed[f] = !m->edits[i].on;
    }
    for (unsigned f = 0; f < NR_FEATURES; f++) {
        if (removed[f]) {
            feature_set(c, f, false);
        } else if (asked[f]) {
            if (!feature_get(c, f) && strcmp(features[f].name, "hypervisor")) {
                static const char *const reg[] = { "eax", "ebx", "ecx", "edx" };
                snprintf(why, why_len, "cpu feature '%s' (CPUID 0x%x.%u %s bit %u): KVM cannot "
                         "give it on this host", features[f].name, features[f].leaf,
                         features[f].subleaf, reg[features[f].reg], features[f].bit);
                return -ENOTSUP;
            }
            feature_set(c, f, true);
        }
    }
    /* What needs a removed feature goes too, unless it was asked for. */
    do {
        changed = false;
        for (size_t i = 0; i < sizeof(deps) / sizeof(deps[0]); i++) {
            int f = hv_cpu_feature_find(deps[i].feature), d = hv_cpu_feature_find(deps[i].depends);
            if (f < 0 || d < 0 || !removed[d] || removed[f])
                continue;
            if (asked[f]) {
                snprintf(why, why_len, "cpu feature '%s' needs '%s', which is removed",
                         deps[i].feature, deps[i].depends);
                return -ENOTSUP;
            }
            removed[f] = true;
            feature_set(c, (unsigned)f, false);
            changed = true;
        }
    } while (changed);
    cpuid_fix_xstate(c, removed);
    return 0;
}

int hv_cpuid_build(int kvm_fd, const struct hv_cpu_model *m, struct kvm_cpuid2 **out,
                   char *why, size_t why_len)
{
    size_t sz = sizeof(struct kvm_cpuid2) + HV_CPUID_MAX * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = calloc(1, sz);
    int rc;

    *out = NULL;
    if (!c)
        return -ENOMEM;
    c->nent = HV_CPUID_MAX;
    if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
        rc = -errno;
        snprintf(why, why_len, "kvm: KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
        free(c);
        return rc;
    }
    /* vCPU 0's view; vcpu.c puts each vCPU's APIC ID in. */
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1) {
            e->ebx &= 0x00ffffffu;
            e->ecx |= 1u << 31;     /* hypervisor present */
        } else if (e->function == 0xb || e->function == 0x1f) {
            e->edx = 0;
        }
    }
    rc = hv_cpuid_apply(c, m, why, why_len);
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void hv_cpuid_print(const struct kvm_cpuid2 *c, FILE *f)
{
    fprintf(f, "# leaf   subleaf  eax      ebx      ecx      edx       flags (/proc/cpuinfo "
            "names)\n");
    for (unsigned i = 0; i < c->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &c->entries[i];
        const uint32_t regs[4] = { e->eax, e->ebx, e->ecx, e->edx };
        fprintf(f, "cpuid %08x %08x %08x %08x %08x %08x ", e->function,
                e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX ? e->index : 0, e->eax, e->ebx,
                e->ecx, e->edx);
        for (unsigned k = 0; k < NR_FEATURES; k++) {
            const struct cpu_feature *ft = &features[k];
            if (ft->leaf == e->function &&
                (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || ft->subleaf == e->index) &&
                (regs[ft->reg] >> ft->bit & 1))
                fprintf(f, " %s", ft->name);
        }
        fputc('\n', f);
    }
}
