#!/usr/bin/env bash
# Build a minimal busybox root filesystem as a deterministic tarball.
#
#   scripts/make-busybox-rootfs.sh OUT.tar
#
# The rootfs holds a static busybox at /bin/busybox, one symlink per applet at the path that
# `busybox --list-full` names (so /bin/sh, /usr/bin/env, /sbin/ip, ... all exist), /etc/passwd and
# /etc/group with root and nobody, and the empty directories and files a container engine mounts
# over (/proc /sys /dev /tmp /etc/hostname /etc/hosts /etc/resolv.conf).
#
# The tarball is reproducible: entries sorted by name (C locale), no "./" prefix, mtime fixed to
# SOURCE_DATE_EPOCH (default 2024-01-01T00:00:00Z), owner and group 0, ustar format. Two runs with
# the same busybox binary give byte-identical output.
#
# Environment:
#   BUSYBOX            busybox binary to use (default /bin/busybox; must be statically linked,
#                      e.g. from Debian's busybox-static package)
#   SOURCE_DATE_EPOCH  mtime of every entry (default 1704067200)
#
# Does not need root.
set -euo pipefail

die() { echo "make-busybox-rootfs: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 OUT.tar"
out=$1
bb=${BUSYBOX:-/bin/busybox}
epoch=${SOURCE_DATE_EPOCH:-1704067200}

[[ -x $bb ]] || die "$bb not found; install Debian's busybox-static package (apt-get install busybox-static)"
# ldd exits non-zero ("not a dynamic executable") for a static binary. A dynamic busybox would
# fail inside the container because the rootfs has no libc.
if ldd "$bb" >/dev/null 2>&1; then
  die "$bb is dynamically linked; install busybox-static (or set BUSYBOX to a static busybox)"
fi
command -v tar >/dev/null || die "tar not found"

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-busybox-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"

# Directories, with the modes a conventional image has.
for d in bin sbin usr usr/bin usr/sbin etc dev proc sys tmp root var var/log var/run var/tmp home; do
  mkdir -p "$root/$d"
done
chmod 0755 "$root"
find "$root" -type d -exec chmod 0755 {} +
chmod 0555 "$root/proc" "$root/sys"
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 0700 "$root/root"

install -m 0755 "$bb" "$root/bin/busybox"

# One symlink per applet. Absolute targets resolve inside the container's root.
n=0
while IFS= read -r applet; do
  [[ -n $applet ]] || continue
  [[ $applet == bin/busybox ]] && continue
  case $applet in /* | *..*) die "unexpected applet path from busybox --list-full: $applet" ;; esac
  mkdir -p "$root/$(dirname "$applet")"
  ln -sfn /bin/busybox "$root/$applet"
  n=$((n + 1))
done < <("$bb" --list-full)
[[ $n -gt 100 ]] || die "busybox --list-full listed only $n applets"
[[ -L $root/bin/sh ]] || die "busybox has no sh applet"

# Users, groups and the files an engine bind-mounts over.
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
EOF
cat >"$root/etc/shadow" <<'EOF'
root:*:19723:0:99999:7:::
nobody:*:19723:0:99999:7:::
EOF
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
printf 'berth\n' >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
find "$root/etc" -type f -exec chmod 0644 {} +
chmod 0640 "$root/etc/shadow"

# Deterministic archive: explicit sorted member list, no "./" prefix.
tmp_out="$out.tmp.$$"
(
  cd "$root"
  find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort
) | tar -C "$root" --create --file="$tmp_out" --format=ustar --no-recursion \
  --owner=0 --group=0 --numeric-owner --mtime="@$epoch" --files-from=-
mv -f "$tmp_out" "$out"
echo "make-busybox-rootfs: wrote $out ($n applets)" >&2
