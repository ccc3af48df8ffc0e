#!/usr/bin/env bash
# Prints the path of SoftHSM2's PKCS#11 module (Debian/Ubuntu, Fedora, Homebrew and source-install locations).
for p in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
         /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so /usr/lib64/pkcs11/libsofthsm2.so \
         /usr/local/lib/softhsm/libsofthsm2.so /opt/homebrew/lib/softhsm/libsofthsm2.so; do
  [ -f "$p" ] && { echo "$p"; exit 0; }
done
echo "find-library: libsofthsm2.so not found" >&2
exit 1
