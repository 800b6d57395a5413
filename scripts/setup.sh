#!/usr/bin/env bash
# Installs what hcikit needs on a Debian 12 (bookworm) machine, as root. Idempotent: a second
# run only checks. Everything comes from Debian's archive (bookworm + bookworm-backports) and
# PyPI (the `just` binary); no host name is written here: backports reuses the URIs of the
# machine's own Debian sources.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run as root (sudo bash scripts/setup.sh)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# Packages from bookworm itself.
# gnupg and apt-utils (apt-ftparchive) build the signed apt repository of the `proxmox`
# base test (`just apt-test`); dpkg-deb comes with dpkg.
base_pkgs=(libarchive13 mmdebstrap dosfstools mtools gdisk fdisk ovmf systemd-boot-efi
  bmap-tools zstd corosync ifupdown2 ceph-common iproute2 busybox-static cpio
  ca-certificates gnupg apt-utils
  dnsmasq-base ipxe ipxe-qemu)  # the network install tier (`just netinstall-test`)
# Packages that must come from bookworm-backports (see shared machine notes):
# e2fsprogs >= 1.47.1 lets mke2fs -d read a tar; qemu-system-x86 must match qemu-utils.
bpo_pkgs=(e2fsprogs qemu-system-x86)

need_install=0
for p in "${base_pkgs[@]}" "${bpo_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_install=1
done
if ! mke2fs -V 2>&1 | grep -Eq '1\.(4[7-9]\.[1-9]|[5-9][0-9])'; then need_install=1; fi

if [ "$need_install" = 1 ]; then
  src=/etc/apt/sources.list.d/debian.sources
  bpo=/etc/apt/sources.list.d/backports.sources
  if [ ! -f "$bpo" ]; then
    if [ -f "$src" ]; then
      awk 'BEGIN{RS="";ORS="\n\n"} NR==1' "$src" \
        | sed -e 's/^Suites:.*/Suites: bookworm-backports/' -e '/^#/d' > "$bpo"
    else
      # One-line sources.list style: reuse the first bookworm line's URI.
      uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
      echo "deb $uri bookworm-backports main" > /etc/apt/sources.list.d/backports.list
    fi
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends -t bookworm-backports "${bpo_pkgs[@]}"
  apt-get install -y -q --no-install-recommends "${base_pkgs[@]}"
fi

# ifupdown2 keeps its lock in /run/network, which a boot creates, not the package: until
# it exists every `ifup` (even --syntax-check) exits 89 "another instance running".
mkdir -p /run/network

if ! command -v just >/dev/null 2>&1; then
  pip install -q rust-just 2>/dev/null || pip install -q --break-system-packages rust-just
  hash -r
fi
echo "setup: $(mke2fs -V 2>&1 | head -1); $(qemu-system-x86_64 --version | head -1); just $(just --version | cut -d' ' -f2)"
