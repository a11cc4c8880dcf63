#!/usr/bin/env bash
# Build the base image ticklake-base:bookworm without an image registry (docs/docker.md):
# Debian bookworm from the Debian mirror with debootstrap, plus this machine's CPython 3.11
# (>= 3.11.5, as requirements.lock needs; Debian's python3 is 3.11.2), copied to /usr/local
# like the python:3.11-slim-bookworm image has it. Run as root. Idempotent: does nothing when
# the image exists (FORCE=1 rebuilds).
set -euo pipefail
TAG=${BASE_TAG:-ticklake-base:bookworm}
DOCKER=${DOCKER:-docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PYTHON=${PYTHON:-python3}

if [ "${FORCE:-0}" != 1 ] && $DOCKER image inspect "$TAG" >/dev/null 2>&1; then
  echo "docker-base: $TAG exists"; exit 0
fi
prefix=$("$PYTHON" -c 'import sys; v = sys.version_info
assert v[:2] == (3, 11) and v >= (3, 11, 5), f"need CPython 3.11.5+ (3.11.x), not {sys.version}"
print(sys.base_prefix)')
[ -x "$prefix/bin/python3.11" ] || { echo "docker-base: no $prefix/bin/python3.11" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "docker-base: install debootstrap (apt-get install debootstrap)" >&2; exit 1; }

work=$(mktemp -d /tmp/ticklake-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "docker-base: debootstrap bookworm from $MIRROR (about a minute)"
debootstrap --variant=minbase \
  --include=ca-certificates,libssl3,libffi8,libsqlite3-0,zlib1g,libbz2-1.0,liblzma5,libreadline8,libncursesw6,libexpat1,libuuid1 \
  bookworm "$work/rootfs" "$MIRROR" > "$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
echo "docker-base: CPython $("$prefix/bin/python3.11" -V 2>&1 | cut -d' ' -f2) from $prefix"
tar -C "$prefix" --exclude='lib/python3.11/site-packages/*' --exclude='lib/python3.11/test' \
  --exclude='lib/python3.11/idlelib' --exclude='lib/python3.11/tkinter' --exclude='__pycache__' \
  -cf - bin/python3.11 lib/libpython3.11.so.1.0 lib/python3.11 | tar -C "$work/rootfs/usr/local" -xf -
ln -sf python3.11 "$work/rootfs/usr/local/bin/python3"
ln -sf python3.11 "$work/rootfs/usr/local/bin/python"
chroot "$work/rootfs" /sbin/ldconfig
chroot "$work/rootfs" /usr/local/bin/python3 -c 'import ssl, sqlite3, venv, ensurepip'
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb
tar -C "$work/rootfs" -c . | $DOCKER import -c 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' - "$TAG" >/dev/null
echo "docker-base: $TAG built"
