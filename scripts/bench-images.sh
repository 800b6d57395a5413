#!/usr/bin/env bash
# Image build benchmark: hcikit (1 node, 3 nodes, spec-only rebuild, zst) against the
# obvious shell pipeline (sgdisk + mkfs.vfat + mcopy + mke2fs -d per node) on the same
# base archive and disk size. Prints a markdown table; docs/performance.md records it.
#
#   BENCH_BASE=path/to/rootfs.tar.zst   base archive (default: generated with mmdebstrap)
#   BENCH_DIR=/tmp/hcikit-bench         scratch folder (images are sparse)
#   BENCH_DISK=8G                        disk size of every image
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/hcikit-bench}
disk=${BENCH_DISK:-8G}
esp_mib=512
hcikit=$root/target/release/hcikit
mkdir -p "$work"

[[ -x $hcikit && -x $root/target/release/hcikit-firstboot ]] ||
  cargo build --release -p hcikit -p hcikit-firstboot --bins --manifest-path "$root/Cargo.toml"

base=${BENCH_BASE:-$work/debian-base.tar.zst}
if [[ ! -f $base ]]; then
  echo "generating a Debian base with mmdebstrap into $base (a few minutes, once)" >&2
  mmdebstrap --variant=minbase \
    --include=linux-image-amd64,systemd,systemd-sysv,systemd-boot-efi,initramfs-tools,udev,kmod,openssh-server \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$base" /etc/apt/sources.list.d/debian.sources >&2
fi

# The lab example with a fixed disk size, next to its secrets.
spec_dir=$work/spec
rm -rf "$spec_dir" && mkdir -p "$spec_dir"
cp -r "$root/examples/secrets" "$spec_dir/"
chmod 600 "$spec_dir"/secrets/*
cp "$root/examples/lab.toml" "$spec_dir/lab.toml"
printf '\n[image]\ndisk-size = "%s"\nesp-size = "%sM"\n' "$disk" "$esp_mib" >>"$spec_dir/lab.toml"

export SOURCE_DATE_EPOCH=1700000000
load0=$(cut -d' ' -f1-3 /proc/loadavg)
ms() { date +%s%3N; }
# CPU milliseconds (user + system) of every finished child so far, from `times`, which
# must run in this shell (not in a command substitution) to see its children.
child_cpu_ms() {
  times >"$work/.times"
  tail -1 "$work/.times" | python3 -c '
import re, sys
t = [float(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", sys.stdin.read())]
print(int(sum(t) * 1000))' >"$work/.cpu"
}
declare -A result cpu
timed() { # name command...
  local name=$1 s e c0 c1
  shift
  child_cpu_ms
  c0=$(<"$work/.cpu")
  s=$(ms)
  "$@" >"$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; exit 1; }
  e=$(ms)
  child_cpu_ms
  c1=$(<"$work/.cpu")
  result[$name]=$((e - s))
  cpu[$name]=$((c1 - c0))
  printf '%-30s %7d ms wall %7d ms cpu\n' "$name" "${result[$name]}" "${cpu[$name]}" >&2
}
build() { "$hcikit" build "$spec_dir/lab.toml" --base "$base" --cache "$work/cache" "$@"; }

rm -rf "$work/cache" "$work/out"
timed hcikit-1-node-cold build -o "$work/out/1" --node pve1
rm -rf "$work/cache"
timed hcikit-3-nodes-cold build -o "$work/out/3"
sed -i 's/^disk-size = .*/&\nkernel-cmdline = ["quiet"]/' "$spec_dir/lab.toml"
timed hcikit-3-nodes-spec-only build -o "$work/out/3s"
timed hcikit-3-nodes-zst-first build -o "$work/out/3z" --format zst
sed -i 's/^kernel-cmdline = .*/kernel-cmdline = ["quiet", "loglevel=4"]/' "$spec_dir/lab.toml"
timed hcikit-3-nodes-zst-spec-only build -o "$work/out/3zs" --format zst

# The shell pipeline: per node a fresh FAT ESP and a fresh ext4 from the same base.
shell_pipeline() {
  local d=$work/shell kernel initrd
  rm -rf "$d" && mkdir -p "$d/esp/EFI/BOOT" "$d/esp/loader/entries" "$d/esp/hcikit" "$d/x"
  zstd -dqc "$base" >"$d/base.tar"
  tar -C "$d/x" -xf "$d/base.tar" --wildcards './boot/vmlinuz-*' './boot/initrd.img-*' \
    ./usr/lib/systemd/boot/efi/systemd-bootx64.efi
  kernel=$(ls "$d"/x/boot/vmlinuz-* | sort -V | tail -1)
  initrd=$(ls "$d"/x/boot/initrd.img-* | sort -V | tail -1)
  cp "$kernel" "$d/esp/vmlinuz"
  cp "$initrd" "$d/esp/initrd.img"
  cp "$d/x/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$d/esp/EFI/BOOT/BOOTX64.EFI"
  "$hcikit" plan "$spec_dir/lab.toml" --json >"$d/esp/hcikit/plan.json"
  local size_b root_mib
  size_b=$(numfmt --from=iec "$disk")
  root_mib=$((size_b / 1048576 - 1 - esp_mib - 1))
  for n in pve1 pve2 pve3; do
    local img=$d/$n.img
    truncate -s "$disk" "$img"
    sgdisk -n1:2048:+${esp_mib}M -t1:ef00 -c1:ESP -n2:0:+${root_mib}M -t2:8304 -c2:root "$img" >/dev/null
    echo "$n" >"$d/esp/hcikit/node"
    printf 'title %s\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=PARTLABEL=root rw\n' "$n" \
      >"$d/esp/loader/entries/hcikit.conf"
    rm -f "$d/esp.img" "$d/root.img"
    mkfs.vfat -F 32 -n ESP -C "$d/esp.img" $((esp_mib * 1024)) >/dev/null
    mcopy -s -i "$d/esp.img" "$d"/esp/* ::/
    mke2fs -q -t ext4 -d "$d/base.tar" "$d/root.img" "${root_mib}M"
    dd if="$d/esp.img" of="$img" bs=1M seek=1 conv=sparse,notrunc status=none
    dd if="$d/root.img" of="$img" bs=1M seek=$((1 + esp_mib)) conv=sparse,notrunc status=none
    sha256sum "$img" >"$img.sha256"
  done
}
timed shell-3-nodes shell_pipeline

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
row() { # label name
  printf '| %s | %d | %s | %d | %s |\n' "$1" "${result[$2]}" "$(ratio "${result[$2]}" "${result[hcikit-1-node-cold]}")" \
    "${cpu[$2]}" "$(ratio "${cpu[$2]}" "${cpu[hcikit-1-node-cold]}")"
}
echo
echo "| run | wall ms | wall vs 1 node | CPU ms | CPU vs 1 node |"
echo "|---|---:|---:|---:|---:|"
row "hcikit, 1 node, cold cache" hcikit-1-node-cold
row "hcikit, 3 nodes, cold cache" hcikit-3-nodes-cold
row "hcikit, 3 nodes, spec-only change (root cached)" hcikit-3-nodes-spec-only
row "hcikit, 3 nodes, zst, root compressed now" hcikit-3-nodes-zst-first
row "hcikit, 3 nodes, zst, spec-only change" hcikit-3-nodes-zst-spec-only
row "shell pipeline, 3 nodes" shell-3-nodes
echo
echo "base: $(basename "$base") ($(du -h "$base" | cut -f1)), disk $disk, ESP ${esp_mib} MiB, $(nproc) cores, load average before: $load0"
