#!/bin/sh
# Regenerates the TLS test certificates in certs/ (needs the openssl CLI). The CA key is
# thrown away: the committed CA can sign nothing new, it only lets a test process trust
# the emulator's interception certificate (SSL_CERT_FILE=certs/ca.pem).
set -eu
cd "$(dirname "$0")/certs"
tmp=$(mktemp -d)
openssl req -x509 -newkey rsa:2048 -nodes -days 9000 -subj "/CN=FluxFill test CA" \
  -keyout "$tmp/ca.key" -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash"
openssl req -newkey rsa:2048 -nodes -subj "/CN=fal emulator" -keyout server.key -out "$tmp/server.csr"
cat > "$tmp/ext.cnf" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:queue.fal.run,DNS:fal.run,DNS:rest.fal.ai,DNS:v3.fal.media,DNS:fal.media,DNS:v3b.fal.media,DNS:falrun.com,DNS:queue.falrun.com,DNS:api.wavespeed.ai,IP:127.0.0.1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EXT
openssl x509 -req -in "$tmp/server.csr" -CA ca.pem -CAkey "$tmp/ca.key" -CAcreateserial \
  -days 8999 -out server.pem -extfile "$tmp/ext.cnf"
rm -rf "$tmp" ca.srl
