#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# TLS material for the share tests, made with GnuTLS's certtool the way
# docs/usb.md tells users to, in QEMU's tls-creds layouts:
#   DIR/server   ca-cert.pem server-cert.pem server-key.pem  (ferry usb share --tls-creds)
#   DIR/client   ca-cert.pem client-cert.pem client-key.pem  (QEMU tls-creds-x509 endpoint=client)
#   DIR/nocert   ca-cert.pem only                             (a client without a certificate)
#   DIR/rogue    a client certificate from another CA (and both CAs in ca-cert.pem)
#   DIR/psk      keys.psk (identity qemu)                     (both ends of tls-creds-psk)
#   DIR/badpsk   keys.psk, same identity, another key
#   mkcerts.sh DIR
set -eu
d=$1
command -v certtool >/dev/null || { echo "SKIP: certtool (gnutls-bin) is not installed"; exit 77; }
mkdir -p "$d/server" "$d/client" "$d/nocert" "$d/rogue" "$d/psk" "$d/badpsk" "$d/tmp"
t=$d/tmp
ct() { certtool "$@" >/dev/null 2>&1 || { echo "mkcerts: certtool $* failed" >&2; certtool "$@" >&2; exit 1; }; }
printf 'cn = Ferry test CA\nca\ncert_signing_key\nexpiration_days = 30\n' > "$t/ca.info"
printf 'cn = Another CA\nca\ncert_signing_key\nexpiration_days = 30\n' > "$t/ca2.info"
# QEMU checks the server's name against the address it connects to
printf 'organization = Ferry\ncn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\nip_address = ::1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 30\n' > "$t/server.info"
printf 'country = GB\norganization = Ferry\ncn = guest1\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 30\n' > "$t/client.info"
ct --generate-privkey --outfile "$t/ca-key.pem"
ct --generate-self-signed --load-privkey "$t/ca-key.pem" --template "$t/ca.info" --outfile "$t/ca-cert.pem"
ct --generate-privkey --outfile "$t/ca2-key.pem"
ct --generate-self-signed --load-privkey "$t/ca2-key.pem" --template "$t/ca2.info" --outfile "$t/ca2-cert.pem"
ct --generate-privkey --outfile "$d/server/server-key.pem"
ct --generate-certificate --load-privkey "$d/server/server-key.pem" --load-ca-certificate "$t/ca-cert.pem" \
   --load-ca-privkey "$t/ca-key.pem" --template "$t/server.info" --outfile "$d/server/server-cert.pem"
ct --generate-privkey --outfile "$d/client/client-key.pem"
ct --generate-certificate --load-privkey "$d/client/client-key.pem" --load-ca-certificate "$t/ca-cert.pem" \
   --load-ca-privkey "$t/ca-key.pem" --template "$t/client.info" --outfile "$d/client/client-cert.pem"
ct --generate-privkey --outfile "$d/rogue/client-key.pem"
ct --generate-certificate --load-privkey "$d/rogue/client-key.pem" --load-ca-certificate "$t/ca2-cert.pem" \
   --load-ca-privkey "$t/ca2-key.pem" --template "$t/client.info" --outfile "$d/rogue/client-cert.pem"
for x in server client nocert; do cp "$t/ca-cert.pem" "$d/$x/ca-cert.pem"; done
# the rogue client trusts the share's CA too (QEMU checks its own certificate
# against its ca-cert.pem first): only the share's check can refuse it
cat "$t/ca-cert.pem" "$t/ca2-cert.pem" > "$d/rogue/ca-cert.pem"
echo "qemu:$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" > "$d/psk/keys.psk"
echo "qemu:$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" > "$d/badpsk/keys.psk"
chmod 600 "$d"/*/*-key.pem "$d"/*/keys.psk
rm -rf "$t"
