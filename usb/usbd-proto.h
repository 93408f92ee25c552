/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The control socket of ferry-usbd (see ferry-usbd.c for the requests). */
#ifndef FERRY_USBD_PROTO_H
#define FERRY_USBD_PROTO_H

#include <stdlib.h>

/* $FERRY_USBD_SOCKET, else /run/ferry/usbd.sock */
static inline const char *usbd_default_socket(void)
{
    const char *s = getenv("FERRY_USBD_SOCKET");

    return s && *s ? s : "/run/ferry/usbd.sock";
}

#endif
