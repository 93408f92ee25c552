// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Device-access policy: usbredir filter rules (checked with usbredirparser's
 * filter functions against the device and all its interfaces) on top of a
 * built-in default that refuses HID keyboards and mice and hubs unless a
 * rule names them.  Every verdict names the rule that decided it.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <usbredirfilter.h>

#include "usb/ferry-usb.h"

#define POLICY_RULES_MAX 256

struct ferry_usb_policy {
    struct usbredirfilter_rule *rules;
    int n;
};

int ferry_usb_policy_new(const char *rules, struct ferry_usb_policy **out,
                         char *err, size_t errlen)
{
    struct ferry_usb_policy *p = g_new0(struct ferry_usb_policy, 1);
    int r;

    if (rules && *rules) {
        r = usbredirfilter_string_to_rules(rules, ",", "|", &p->rules, &p->n);
        if (r < 0) {
            snprintf(err, errlen, "usb policy '%s': %s", rules,
                     r == -EINVAL ? "not in usbredir filter syntax "
                                    "(class,vendor,product,version,allow|...)"
                                  : g_strerror(-r));
            g_free(p);
            return r;
        }
        if (p->n > POLICY_RULES_MAX) {
            snprintf(err, errlen, "usb policy: %d rules, at most %d", p->n, POLICY_RULES_MAX);
            usbredirfilter_free(p->rules);
            g_free(p);
            return -E2BIG;
        }
    }
    *out = p;
    return 0;
}

void ferry_usb_policy_free(struct ferry_usb_policy *p)
{
    if (!p)
        return;
    if (p->rules)
        usbredirfilter_free(p->rules);
    g_free(p);
}

static int check(const struct usbredirfilter_rule *rules, int n,
                 const struct ferry_usb_devinfo *d, int flags)
{
    uint8_t cls[FERRY_USB_IFACE_MAX], sub[FERRY_USB_IFACE_MAX], proto[FERRY_USB_IFACE_MAX];

    for (unsigned i = 0; i < d->n_ifaces; i++) {
        cls[i] = d->ifaces[i].cls;
        sub[i] = d->ifaces[i].subcls;
        proto[i] = d->ifaces[i].proto;
    }
    return usbredirfilter_check(rules, n, d->cls, d->subcls, d->proto, cls, sub, proto,
                                (int)d->n_ifaces, d->vid, d->pid, d->bcd_device,
                                flags | usbredirfilter_fl_dont_skip_non_boot_hid);
}

static void rule_text(const struct usbredirfilter_rule *r, int i, char *buf, size_t len)
{
    char *s = usbredirfilter_rules_to_string(r, 1, ",", "|");

    snprintf(buf, len, "rule %d '%s'", i + 1, s ? s : "?");
    if (s)
        usbredirfilter_free(s);
}

/* Does rule r name this device: an explicit class it or one of its
 * interfaces has, or its explicit vendor id? */
static bool rule_names(const struct usbredirfilter_rule *r, const struct ferry_usb_devinfo *d)
{
    if (r->vendor_id != -1 && r->vendor_id == d->vid &&
        (r->product_id == -1 || r->product_id == d->pid))
        return true;
    if (r->device_class == -1)
        return false;
    if (r->device_class == d->cls)
        return true;
    for (unsigned i = 0; i < d->n_ifaces; i++)
        if (r->device_class == d->ifaces[i].cls)
            return true;
    return false;
}

static const char *builtin_refusal(const struct ferry_usb_devinfo *d)
{
    if (d->cls == 0x09)
        return "built-in rule: hubs are not passed through";
    for (unsigned i = 0; i < d->n_ifaces; i++) {
        if (d->ifaces[i].cls == 0x09)
            return "built-in rule: hubs are not passed through";
        if (d->ifaces[i].cls == 0x03 && d->ifaces[i].subcls == 0x01 &&
            (d->ifaces[i].proto == 0x01 || d->ifaces[i].proto == 0x02))
            return d->ifaces[i].proto == 1 ?
                   "built-in rule: HID keyboards need a rule that names them" :
                   "built-in rule: HID mice need a rule that names them";
    }
    return NULL;
}

int ferry_usb_policy_check(const struct ferry_usb_policy *p, const struct ferry_usb_devinfo *d,
                           char *why, size_t len)
{
    const char *builtin = builtin_refusal(d);
    bool named = false;
    int r;

    for (int i = 0; p && i < p->n; i++)
        named |= rule_names(&p->rules[i], d);
    if (builtin && !named) {
        snprintf(why, len, "%s", builtin);
        return -EPERM;
    }
    if (!p || p->n == 0) {
        snprintf(why, len, "built-in rule: allowed by default");
        return 0;
    }
    r = check(p->rules, p->n, d, 0);
    if (r == -ENOENT) {
        snprintf(why, len, "built-in rule: no rule matched, allowed by default");
        return 0;
    }
    /* the deciding rule: the shortest prefix of the rules that gives the
     * same verdict as all of them */
    for (int i = 0; i < p->n; i++) {
        if (check(p->rules, i + 1, d, 0) == r) {
            rule_text(&p->rules[i], i, why, len);
            return r == 0 ? 0 : -EPERM;
        }
    }
    snprintf(why, len, "rules %d..%d together", 1, p->n);
    return r == 0 ? 0 : -EPERM;
}
