#!/usr/bin/env bash
# A throwaway self-signed TLS certificate for tests: valid one day, for the loopback address only.
#
#   bash scripts/test-cert.sh DIR [NAME]   writes DIR/NAME.crt and DIR/NAME.key (NAME default: test)
#
# The certificate is its own CA: a client trusts it by passing the .crt as its CA (ws/https `ca`
# option, or NODE_EXTRA_CA_CERTS for a child process).
set -euo pipefail

dir=${1:?usage: bash scripts/test-cert.sh DIR [NAME]}
name=${2:-test}
command -v openssl >/dev/null || {
  echo "test-cert.sh: openssl is not installed; install it (Debian: apt-get install openssl) to run the TLS tests" >&2
  exit 1
}
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$dir/$name.key" -out "$dir/$name.crt" 2>"$dir/$name.openssl.log" || {
  echo "test-cert.sh: openssl could not make the certificate:" >&2
  cat "$dir/$name.openssl.log" >&2
  exit 1
}
rm -f "$dir/$name.openssl.log"
