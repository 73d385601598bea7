#!/usr/bin/env bash
# Measures the README's two-command setup on a fresh Debian bookworm machine: debootstraps a
# minimal root, clones this repository's current branch (its commits, not uncommitted changes)
# into it, runs `bash scripts/setup.sh` there with cold apt, pip and npm caches and times it, then
# serves from that root and checks /healthz, /readyz, `codeinterp doctor`, a Files upload and one
# code cell through the Assistants API (scripts/fresh_debian_smoke.py, with the tests' scripted
# model on this host), and prints the sizes. Not part of the test suite: it takes about half an
# hour. Needs root, debootstrap, and this checkout set up with --test (the smoke check's client).
#   bash scripts/fresh-debian-check.sh [ROOT]     # ROOT defaults to /var/tmp/codeinterp-fresh-debian
# ROOT is wiped first; everything mounted is unmounted at the end, and ROOT is left for a look.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${1:-/var/tmp/codeinterp-fresh-debian}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CHECKOUT=/opt/codeinterp
BRANCH=$(git -C "$REPO" rev-parse --abbrev-ref HEAD)
LOG=$ROOT.log
CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

unmount_all() {
    if mountpoint -q "$ROOT"; then umount -R "$ROOT"; fi
}
trap unmount_all EXIT
in_root() {  # runs a command in the root with a clean environment, plus the variables in CHROOT_ENV
    chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=$CLEAN_PATH LANG=C.UTF-8 "${CHROOT_ENV[@]}" "$@"
}
seconds() { date +%s; }

unmount_all
rm -rf "$ROOT"
echo "debootstrap bookworm (minbase) into $ROOT ..."
start=$(seconds)
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$LOG" 2>&1
echo "  $(( $(seconds) - start )) s"

# The root is a mount point of its own, as / is on a machine (bubblewrap remounts / as a slave).
mount --bind "$ROOT" "$ROOT"
mount -t proc proc "$ROOT/proc"
mount --rbind /sys "$ROOT/sys" && mount --make-rslave "$ROOT/sys"   # with /sys/fs/cgroup, as sandboxes need
mount --rbind /dev "$ROOT/dev" && mount --make-rslave "$ROOT/dev"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
echo "deb $MIRROR bookworm main" > "$ROOT/etc/apt/sources.list"
CHROOT_ENV=(DEBIAN_FRONTEND=noninteractive)
# A host behind a TLS-inspecting egress trusts extra CAs; a machine behind the same egress needs
# them too (pip and npm then use the system's bundle). On an open network there are none.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    in_root apt-get update -qq >>"$LOG" 2>&1
    in_root apt-get install -y -qq --no-install-recommends ca-certificates >>"$LOG" 2>&1
    CHROOT_ENV+=(PIP_CERT=/etc/ssl/certs/ca-certificates.crt NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
fi
in_root apt-get clean
base_mb=$(du -sm --one-file-system "$ROOT" | cut -f1)

git clone -q --branch "$BRANCH" "$REPO" "$ROOT$CHECKOUT"
mkdir -p "$ROOT/var/cache/pip-cold" "$ROOT/var/cache/npm-cold"
CHROOT_ENV+=(PIP_CACHE_DIR=/var/cache/pip-cold npm_config_cache=/var/cache/npm-cold)
echo "setup (bash scripts/setup.sh, cold caches) ..."
start=$(seconds)
in_root bash -c "cd $CHECKOUT && bash scripts/setup.sh" >>"$LOG" 2>&1 || { tail -30 "$LOG"; exit 1; }
setup_seconds=$(( $(seconds) - start ))
echo "  $setup_seconds s"

echo "doctor ..."
in_root bash -c "cd $CHECKOUT && .venv/bin/codeinterp doctor" >"$ROOT.doctor.txt" 2>&1 || { cat "$ROOT.doctor.txt"; exit 1; }
grep -c "^  OK" "$ROOT.doctor.txt" | sed 's/^/  OK lines: /'
grep "MISSING" "$ROOT.doctor.txt" | sed 's/^/  /' || true

echo "serve and smoke check ..."
(cd "$REPO" && PYTHONPATH=. .venv/bin/python scripts/fresh_debian_smoke.py "$ROOT" "$CHECKOUT")

in_root apt-get clean
rm -rf "$ROOT/var/cache/pip-cold" "$ROOT/var/cache/npm-cold"
total_mb=$(du -sm --one-file-system "$ROOT" | cut -f1)
sizes() { du -sm "$ROOT$CHECKOUT/$1" | cut -f1; }
echo
echo "setup, cold caches:        $setup_seconds s"
echo "sandbox environment:       $(sizes .sandbox-env) MB (.sandbox-env)"
echo "server environment:        $(sizes .venv) MB (.venv)"
echo "Debian packages and rest:  $(( total_mb - base_mb - $(sizes .sandbox-env) - $(sizes .venv) )) MB"
echo "root after setup:          $total_mb MB (minimal bookworm before setup: $base_mb MB; apt, pip and npm caches emptied)"
echo "log: $LOG"
