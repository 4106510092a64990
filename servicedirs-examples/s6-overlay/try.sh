#!/bin/sh
# Runs root/ as an s6-overlay image with rsv as /init, without a container engine: a throw-away
# root holding the static rsv, busybox-static and root/etc, chrooted as PID 1 of a new mount+pid
# namespace (needs root, unshare and busybox-static). Arguments are the CMD.
#   RSV=/path/to/rsv sh try.sh /bin/sh -c 'echo CMD: hello; sleep 1'
set -e
here=$(cd "$(dirname "$0")" && pwd)
rsv=${RSV:-$(command -v rsv)}
busybox=${BUSYBOX:-$(command -v busybox)}
test -x "$rsv" || { echo "try.sh: set RSV to the rsv binary" >&2; exit 100; }
test -x "$busybox" || { echo "try.sh: busybox-static is needed" >&2; exit 100; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root/bin" "$root/usr/bin" "$root/proc" "$root/run" "$root/tmp" "$root/var" "$root/dev"
mknod -m 666 "$root/dev/null" c 1 3
cp "$rsv" "$root/bin/rsv"
cp "$busybox" "$root/bin/busybox"
for a in sh sleep cat echo mkdir; do ln -s busybox "$root/bin/$a"; done
ln -s bin/rsv "$root/init"
cp -a "$here/root/etc" "$root/etc"
chroot "$root" /bin/rsv install --s6-overlay /usr/bin
SCHEMA_VERSION=${SCHEMA_VERSION:-3} unshare --mount --pid --fork --kill-child \
    --mount-proc="$root/proc" chroot "$root" /init "$@"
