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
ms() { date +%s%3N; }
declare -A result
timed() { # name command...
  local name=$1 s e
  shift
  s=$(ms)
  "$@" >"$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; exit 1; }
  e=$(ms)
  result[$name]=$((e - s))
  printf '%-28s %6d ms\n' "$name" "${result[$name]}" >&2
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
cat <<EOF

| run | ms | vs hcikit 1 node cold |
|---|---:|---:|
| hcikit, 1 node, cold cache | ${result[hcikit-1-node-cold]} | 1.00 |
| hcikit, 3 nodes, cold cache | ${result[hcikit-3-nodes-cold]} | $(ratio "${result[hcikit-3-nodes-cold]}" "${result[hcikit-1-node-cold]}") |
| hcikit, 3 nodes, spec-only change (root cached) | ${result[hcikit-3-nodes-spec-only]} | $(ratio "${result[hcikit-3-nodes-spec-only]}" "${result[hcikit-1-node-cold]}") |
| hcikit, 3 nodes, zst, root compressed now | ${result[hcikit-3-nodes-zst-first]} | $(ratio "${result[hcikit-3-nodes-zst-first]}" "${result[hcikit-1-node-cold]}") |
| hcikit, 3 nodes, zst, spec-only change | ${result[hcikit-3-nodes-zst-spec-only]} | $(ratio "${result[hcikit-3-nodes-zst-spec-only]}" "${result[hcikit-1-node-cold]}") |
| shell pipeline, 3 nodes | ${result[shell-3-nodes]} | $(ratio "${result[shell-3-nodes]}" "${result[hcikit-1-node-cold]}") |

base: $(basename "$base") ($(du -h "$base" | cut -f1)), disk $disk, ESP ${esp_mib} MiB, $(nproc) cores
EOF
