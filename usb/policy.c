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

int usb_policy_new(const char *rules, struct ferry_usb_policy **out,
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

void usb_policy_free(struct ferry_usb_policy *p)
{
    if (!p)
        return;
    if (p->rules)
        usbredirfilter_free(p->rules);
    g_free(p);
}

/* Interface i of the ones the policy judges: the active configuration's,
 * then the kinds only other altsettings/configurations declare. */
static unsigned n_active(const struct ferry_usb_devinfo *d)
{
    return d->n_ifaces < FERRY_USB_IFACE_MAX ? d->n_ifaces : FERRY_USB_IFACE_MAX;
}

static unsigned n_judged(const struct ferry_usb_devinfo *d)
{
    return n_active(d) + (d->n_other < FERRY_USB_IFACE_MAX ? d->n_other : FERRY_USB_IFACE_MAX);
}

static const struct ferry_usb_iface *judged(const struct ferry_usb_devinfo *d, unsigned i)
{
    return i < n_active(d) ? &d->ifaces[i] : &d->other[i - n_active(d)];
}

static int check(const struct usbredirfilter_rule *rules, int n,
                 const struct ferry_usb_devinfo *d, int flags)
{
    uint8_t cls[2 * FERRY_USB_IFACE_MAX], sub[2 * FERRY_USB_IFACE_MAX];
    uint8_t proto[2 * FERRY_USB_IFACE_MAX];

    for (unsigned i = 0; i < n_judged(d); i++) {
        cls[i] = judged(d, i)->cls;
        sub[i] = judged(d, i)->subcls;
        proto[i] = judged(d, i)->proto;
    }
    return usbredirfilter_check(rules, n, d->cls, d->subcls, d->proto, cls, sub, proto,
                                (int)n_judged(d), d->vid, d->pid, d->bcd_device,
                                flags | usbredirfilter_fl_dont_skip_non_boot_hid);
}

static void rule_text(const struct usbredirfilter_rule *r, int i, char *buf, size_t len)
{
    char *s = usbredirfilter_rules_to_string(r, 1, ",", "|");

    snprintf(buf, len, "rule %d '%s'", i + 1, s ? s : "?");
    if (s)
        usbredirfilter_free(s);
}

/* Does a rule name interface class cls of this device: that explicit
 * class, or the device's explicit vendor (and product) id?  Asked per
 * refused interface: a rule for one interface of a composite device does
 * not let its keyboard through. */
static bool rules_name(const struct ferry_usb_policy *p, const struct ferry_usb_devinfo *d,
                       uint8_t cls)
{
    for (int i = 0; p && i < p->n; i++) {
        const struct usbredirfilter_rule *r = &p->rules[i];

        if (r->vendor_id != -1 && r->vendor_id == d->vid &&
            (r->product_id == -1 || r->product_id == d->pid))
            return true;
        if (r->device_class != -1 && r->device_class == cls)
            return true;
    }
    return false;
}

static const char *builtin_refusal(const struct ferry_usb_policy *p,
                                   const struct ferry_usb_devinfo *d)
{
    static const char hubs[] = "built-in rule: hubs are not passed through";

    if (d->other_truncated)
        return "built-in rule: the device declares more configurations or kinds of "
               "interfaces than Ferry judges";
    if (d->cls == 0x09 && !rules_name(p, d, 0x09))
        return hubs;
    for (unsigned i = 0; i < n_judged(d); i++) {
        const struct ferry_usb_iface *f = judged(d, i);

        if (f->cls == 0x09 && !rules_name(p, d, 0x09))
            return hubs;
        if (f->cls == 0x03 && f->subcls == 0x01 && (f->proto == 0x01 || f->proto == 0x02) &&
            !rules_name(p, d, 0x03))
            return f->proto == 1 ? "built-in rule: HID keyboards need a rule that names them" :
                                   "built-in rule: HID mice need a rule that names them";
    }
    return NULL;
}

const char *usb_policy_builtin(const struct ferry_usb_devinfo *d)
{
    return builtin_refusal(NULL, d);
}

int usb_policy_match(const struct ferry_usb_policy *p, const struct ferry_usb_devinfo *d)
{
    if (!p || p->n == 0)
        return -ENOENT;
    return check(p->rules, p->n, d, 0);
}

char *usb_policy_format(const struct ferry_usb_policy *p)
{
    char *s, *r;

    if (!p || p->n == 0)
        return g_strdup("");
    s = usbredirfilter_rules_to_string(p->rules, p->n, ",", "|");
    r = g_strdup(s ? s : "");
    if (s)
        usbredirfilter_free(s);
    return r;
}

int usb_policy_check(const struct ferry_usb_policy *p, const struct ferry_usb_devinfo *d,
                           char *why, size_t len)
{
    const char *builtin = builtin_refusal(p, d);
    int r;

    if (builtin) {
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
