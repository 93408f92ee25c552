/* SPDX-License-Identifier: GPL-2.0-or-later */
/* TLS sessions of a share (share-tls.c for share.c); not installed. */
#ifndef FERRY_USB_TLS_H
#define FERRY_USB_TLS_H

#include <gnutls/gnutls.h>

#include "usb/ferry-usb.h"

/* A server session on the connected socket fd (non-blocking). */
int usb_tls_session_new(const struct ferry_usb_tls *t, int fd, gnutls_session_t *out,
                        char *err, size_t errlen);
/* After the handshake: is this client allowed (its certificate, for X.509)?
 * 0 with who (its DN or PSK identity, for the log), or -EACCES with err. */
int usb_tls_session_check(const struct ferry_usb_tls *t, gnutls_session_t s, char *who,
                          size_t wholen, char *err, size_t errlen);

#endif
