// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Range sets: sorted arrays of disjoint inclusive ranges.  Lookup sits on
 * the vCPU exit path, so it is a binary search over a flat array (cache
 * friendly, no allocation); changes are rare (claims, BAR moves) and pay
 * for a memmove.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ioreq/ioreq.h"
#include "ioreq/ioreq-internal.h"

struct range {
    uint64_t start, end;
    void *owner;
};

struct ioreq_rangeset {
    struct range *r;
    size_t n, cap;
};

struct ioreq_rangeset *ioreq_rangeset_new(void)
{
    return calloc(1, sizeof(struct ioreq_rangeset));
}

void ioreq_rangeset_free(struct ioreq_rangeset *set)
{
    if (!set)
        return;
    free(set->r);
    free(set);
}

/* Index of the first range whose end >= addr (n if none). */
static size_t first_ending_at_or_after(const struct ioreq_rangeset *set, uint64_t addr)
{
    size_t lo = 0, hi = set->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->r[mid].end < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int ioreq_rangeset_add(struct ioreq_rangeset *set, uint64_t start, uint64_t end,
                       void *owner, void **conflict_owner)
{
    if (start > end)
        return -EINVAL;
    size_t i = first_ending_at_or_after(set, start);
    if (i < set->n && set->r[i].start <= end) {
        if (conflict_owner)
            *conflict_owner = set->r[i].owner;
        return -EEXIST;
    }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        struct range *r = realloc(set->r, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        set->r = r;
        set->cap = cap;
    }
    memmove(&set->r[i + 1], &set->r[i], (set->n - i) * sizeof(*set->r));
    set->r[i] = (struct range){ start, end, owner };
    set->n++;
    return 0;
}

int ioreq_rangeset_remove(struct ioreq_rangeset *set, uint64_t start, uint64_t end,
                          void *owner)
{
    size_t i = first_ending_at_or_after(set, start);

    if (i >= set->n || set->r[i].start != start || set->r[i].end != end ||
        set->r[i].owner != owner)
        return -ENOENT;
    memmove(&set->r[i], &set->r[i + 1], (set->n - i - 1) * sizeof(*set->r));
    set->n--;
    return 0;
}

size_t ioreq_rangeset_remove_owner(struct ioreq_rangeset *set, void *owner)
{
    size_t j = 0, removed;

    for (size_t i = 0; i < set->n; i++)
        if (set->r[i].owner != owner)
            set->r[j++] = set->r[i];
    removed = set->n - j;
    set->n = j;
    return removed;
}

void *ioreq_rangeset_lookup(const struct ioreq_rangeset *set, uint64_t addr,
                            uint64_t *start, uint64_t *end)
{
    size_t i = first_ending_at_or_after(set, addr);

    if (i >= set->n || set->r[i].start > addr)
        return NULL;
    if (start)
        *start = set->r[i].start;
    if (end)
        *end = set->r[i].end;
    return set->r[i].owner;
}

size_t ioreq_rangeset_count(const struct ioreq_rangeset *set)
{
    return set->n;
}

int ioreq_rangeset_foreach(const struct ioreq_rangeset *set,
                           int (*fn)(void *arg, uint64_t start, uint64_t end, void *owner),
                           void *arg)
{
    for (size_t i = 0; i < set->n; i++) {
        int rc = fn(arg, set->r[i].start, set->r[i].end, set->r[i].owner);
        if (rc)
            return rc;
    }
    return 0;
}
