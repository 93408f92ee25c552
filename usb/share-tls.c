// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * TLS for `ferry usb share` (GnuTLS), the server end of what QEMU's
 * usb-redir speaks on a chardev with tls-creds: the same files in the same
 * places as QEMU's tls-creds-x509 (endpoint=server) and tls-creds-psk, and
 * the same checks QEMU makes as a server (crypto/tlssession.c): a client
 * certificate is required and must chain to ca-cert.pem, be within its
 * validity period and not be revoked (ca-crl.pem).  Everything is read at
 * start: a confined share opens no file afterwards.
 */
#include <errno.h>
#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "usb/ferry-usb.h"
#include "usb/usb-tls.h"

/* An identity in keys.psk, at most (QEMU: any; GnuTLS: 128 octets). */
#define TLS_PSK_IDENTITY_MAX 128
/* A key, at most, in bytes (64 hex digits make a 256-bit key). */
#define TLS_PSK_KEY_MAX 512
#define TLS_PSK_KEYS_MAX 256

struct psk_key {
    char *identity;
    gnutls_datum_t key;
};

struct ferry_usb_tls {
    bool psk;
    bool verify_peer;
    gnutls_certificate_credentials_t x509;
    gnutls_psk_server_credentials_t pskc;
    gnutls_priority_t prio;
    GArray *keys;       /* struct psk_key */
};

static int tls_global(char *err, size_t errlen)
{
    int r = gnutls_global_init();

    if (r < 0) {
        snprintf(err, errlen, "tls: cannot initialise GnuTLS: %s", gnutls_strerror(r));
        return -EIO;
    }
    return 0;
}

/* QEMU's default priority (its tls-creds "priority" property, configure
 * --tls-priority), with the PSK key exchanges for PSK as QEMU adds them. */
static int tls_priority(struct ferry_usb_tls *t, char *err, size_t errlen)
{
    const char *p = t->psk ? "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK" : "NORMAL";
    const char *where = NULL;
    int r = gnutls_priority_init(&t->prio, p, &where);

    if (r < 0) {
        snprintf(err, errlen, "tls: priority '%s' at '%s': %s", p, where ? where : "?",
                 gnutls_strerror(r));
        return -EINVAL;
    }
    return 0;
}

static bool file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

int usb_tls_new_x509(const char *dir, bool verify_peer, struct ferry_usb_tls **out,
                     char *err, size_t errlen)
{
    struct ferry_usb_tls *t = g_new0(struct ferry_usb_tls, 1);
    char *ca = g_build_filename(dir, "ca-cert.pem", NULL);
    char *crl = g_build_filename(dir, "ca-crl.pem", NULL);
    char *cert = g_build_filename(dir, "server-cert.pem", NULL);
    char *key = g_build_filename(dir, "server-key.pem", NULL);
    int r;

    t->verify_peer = verify_peer;
    r = tls_global(err, errlen);
    if (r < 0)
        goto fail;
    r = gnutls_certificate_allocate_credentials(&t->x509);
    if (r < 0) {
        snprintf(err, errlen, "tls: %s", gnutls_strerror(r));
        r = -ENOMEM;
        goto fail;
    }
    if (!file_exists(ca) || !file_exists(cert) || !file_exists(key)) {
        snprintf(err, errlen, "tls %s: needs ca-cert.pem, server-cert.pem and server-key.pem "
                 "(QEMU's tls-creds-x509 layout; docs/usb.md shows how to make them): %s is "
                 "missing", dir, !file_exists(ca) ? "ca-cert.pem" :
                 !file_exists(cert) ? "server-cert.pem" : "server-key.pem");
        r = -ENOENT;
        goto fail;
    }
    r = gnutls_certificate_set_x509_trust_file(t->x509, ca, GNUTLS_X509_FMT_PEM);
    if (r <= 0) {
        snprintf(err, errlen, "tls %s: no CA certificate read: %s", ca,
                 r < 0 ? gnutls_strerror(r) : "the file holds none");
        r = -EINVAL;
        goto fail;
    }
    if (file_exists(crl)) {
        r = gnutls_certificate_set_x509_crl_file(t->x509, crl, GNUTLS_X509_FMT_PEM);
        if (r < 0) {
            snprintf(err, errlen, "tls %s: %s", crl, gnutls_strerror(r));
            r = -EINVAL;
            goto fail;
        }
    }
    r = gnutls_certificate_set_x509_key_file(t->x509, cert, key, GNUTLS_X509_FMT_PEM);
    if (r < 0) {
        snprintf(err, errlen, "tls %s, %s: %s", cert, key, gnutls_strerror(r));
        r = -EINVAL;
        goto fail;
    }
    gnutls_certificate_set_known_dh_params(t->x509, GNUTLS_SEC_PARAM_MEDIUM);
    r = tls_priority(t, err, errlen);
    if (r < 0)
        goto fail;
    *out = t;
    r = 0;
    goto out;
fail:
    usb_tls_free(t);
out:
    g_free(ca);
    g_free(crl);
    g_free(cert);
    g_free(key);
    return r;
}

/* One line of keys.psk: IDENTITY:HEXKEY.  0, or -EINVAL with err. */
static int psk_parse_line(struct ferry_usb_tls *t, const char *file, unsigned lineno,
                          char *line, char *err, size_t errlen)
{
    char *colon = strrchr(line, ':');
    gnutls_datum_t hex;
    struct psk_key k = { 0 };
    size_t idlen;
    int r;

    if (!colon || colon == line) {
        snprintf(err, errlen, "tls %s:%u: expected IDENTITY:HEXKEY", file, lineno);
        return -EINVAL;
    }
    idlen = (size_t)(colon - line);
    if (idlen > TLS_PSK_IDENTITY_MAX) {
        snprintf(err, errlen, "tls %s:%u: identity longer than %u bytes", file, lineno,
                 TLS_PSK_IDENTITY_MAX);
        return -EINVAL;
    }
    hex.data = (unsigned char *)colon + 1;
    hex.size = (unsigned)strlen(colon + 1);
    if (hex.size == 0 || hex.size % 2 || hex.size / 2 > TLS_PSK_KEY_MAX) {
        snprintf(err, errlen, "tls %s:%u: the key must be an even number of hex digits, "
                 "1 to %u bytes", file, lineno, TLS_PSK_KEY_MAX);
        return -EINVAL;
    }
    r = gnutls_hex_decode2(&hex, &k.key);
    if (r < 0) {
        snprintf(err, errlen, "tls %s:%u: the key is not hex: %s", file, lineno,
                 gnutls_strerror(r));
        return -EINVAL;
    }
    k.identity = g_strndup(line, idlen);
    g_array_append_val(t->keys, k);
    return 0;
}

static int psk_lookup(gnutls_session_t session, const char *identity, gnutls_datum_t *key)
{
    const struct ferry_usb_tls *t = gnutls_session_get_ptr(session);

    for (guint i = 0; t && i < t->keys->len; i++) {
        const struct psk_key *k = &g_array_index(t->keys, struct psk_key, i);

        if (strcmp(k->identity, identity))
            continue;
        key->data = gnutls_malloc(k->key.size);
        if (!key->data)
            return -1;
        memcpy(key->data, k->key.data, k->key.size);
        key->size = k->key.size;
        return 0;
    }
    return -1;
}

int usb_tls_new_psk(const char *file, struct ferry_usb_tls **out, char *err, size_t errlen)
{
    struct ferry_usb_tls *t = g_new0(struct ferry_usb_tls, 1);
    g_autofree char *text = NULL;
    g_autoptr(GError) gerr = NULL;
    char **lines = NULL;
    int r;

    t->psk = true;
    t->keys = g_array_new(FALSE, TRUE, sizeof(struct psk_key));
    r = tls_global(err, errlen);
    if (r < 0)
        goto fail;
    if (!g_file_get_contents(file, &text, NULL, &gerr)) {
        snprintf(err, errlen, "tls %s: %s", file, gerr->message);
        r = -ENOENT;
        goto fail;
    }
    lines = g_strsplit(text, "\n", -1);
    for (unsigned i = 0; lines[i]; i++) {
        g_strstrip(lines[i]);
        if (!lines[i][0] || lines[i][0] == '#')
            continue;
        if (t->keys->len >= TLS_PSK_KEYS_MAX) {
            snprintf(err, errlen, "tls %s: more than %u keys", file, TLS_PSK_KEYS_MAX);
            r = -EINVAL;
            goto fail;
        }
        r = psk_parse_line(t, file, i + 1, lines[i], err, errlen);
        if (r < 0)
            goto fail;
    }
    if (!t->keys->len) {
        snprintf(err, errlen, "tls %s: no IDENTITY:HEXKEY line (QEMU's keys.psk format)", file);
        r = -EINVAL;
        goto fail;
    }
    r = gnutls_psk_allocate_server_credentials(&t->pskc);
    if (r < 0) {
        snprintf(err, errlen, "tls: %s", gnutls_strerror(r));
        r = -ENOMEM;
        goto fail;
    }
    gnutls_psk_set_server_credentials_function(t->pskc, psk_lookup);
    gnutls_psk_set_server_known_dh_params(t->pskc, GNUTLS_SEC_PARAM_MEDIUM);
    r = tls_priority(t, err, errlen);
    if (r < 0)
        goto fail;
    g_strfreev(lines);
    *out = t;
    return 0;
fail:
    g_strfreev(lines);
    usb_tls_free(t);
    return r;
}

void usb_tls_free(struct ferry_usb_tls *t)
{
    if (!t)
        return;
    if (t->x509)
        gnutls_certificate_free_credentials(t->x509);
    if (t->pskc)
        gnutls_psk_free_server_credentials(t->pskc);
    if (t->prio)
        gnutls_priority_deinit(t->prio);
    for (guint i = 0; t->keys && i < t->keys->len; i++) {
        struct psk_key *k = &g_array_index(t->keys, struct psk_key, i);

        g_free(k->identity);
        if (k->key.data) {
            memset(k->key.data, 0, k->key.size);
            gnutls_free(k->key.data);
        }
    }
    if (t->keys)
        g_array_free(t->keys, TRUE);
    gnutls_global_deinit();
    g_free(t);
}

const char *usb_tls_kind(const struct ferry_usb_tls *t)
{
    return t->psk ? "psk" : "x509";
}

int usb_tls_session_new(const struct ferry_usb_tls *t, int fd, gnutls_session_t *out,
                        char *err, size_t errlen)
{
    gnutls_session_t s;
    int r = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK);

    if (r < 0) {
        snprintf(err, errlen, "tls: new session: %s", gnutls_strerror(r));
        return -ENOMEM;
    }
    gnutls_session_set_ptr(s, (void *)t);
    r = gnutls_priority_set(s, t->prio);
    if (r == 0)
        r = t->psk ? gnutls_credentials_set(s, GNUTLS_CRD_PSK, t->pskc)
                   : gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->x509);
    if (r < 0) {
        snprintf(err, errlen, "tls: new session: %s", gnutls_strerror(r));
        gnutls_deinit(s);
        return -EINVAL;
    }
    if (!t->psk) {
        gnutls_certificate_server_set_request(s, t->verify_peer ? GNUTLS_CERT_REQUIRE
                                                                : GNUTLS_CERT_IGNORE);
        /* no list of acceptable CAs in the request: a client sends the
         * certificate it has, and the log says why that one is refused */
        gnutls_certificate_send_x509_rdn_sequence(s, 1);
    }
    gnutls_transport_set_int(s, fd);
    *out = s;
    return 0;
}

int usb_tls_session_check(const struct ferry_usb_tls *t, gnutls_session_t s, char *who,
                          size_t wholen, char *err, size_t errlen)
{
    const gnutls_datum_t *certs;
    unsigned status = 0, n = 0;
    gnutls_x509_crt_t crt;
    gnutls_datum_t dn = { 0 };
    int r;

    snprintf(who, wholen, "-");
    if (t->psk) {
        const char *id = gnutls_psk_server_get_username(s);

        snprintf(who, wholen, "psk-identity=%s", id ? id : "?");
        return 0;
    }
    if (!t->verify_peer)
        return 0;
    r = gnutls_certificate_verify_peers2(s, &status);
    if (r < 0) {
        snprintf(err, errlen, "cannot verify its certificate: %s", gnutls_strerror(r));
        return -EACCES;
    }
    certs = gnutls_certificate_get_peers(s, &n);
    if (!certs || !n) {
        snprintf(err, errlen, "it presented no client certificate");
        return -EACCES;
    }
    if (status) {
        gnutls_datum_t why = { 0 };

        if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0) == 0) {
            snprintf(err, errlen, "its certificate is refused: %s", (char *)why.data);
            gnutls_free(why.data);
        } else {
            snprintf(err, errlen, "its certificate is refused (status 0x%x)", status);
        }
        return -EACCES;
    }
    if (gnutls_x509_crt_init(&crt) == 0) {
        if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
            gnutls_x509_crt_get_dn2(crt, &dn) == 0) {
            snprintf(who, wholen, "dn=\"%s\"", (char *)dn.data);
            gnutls_free(dn.data);
        }
        gnutls_x509_crt_deinit(crt);
    }
    return 0;
}
