#!/usr/bin/env bash
# Install throughput benchmark, on this host: the installer's writer (the release
# `hcikit-firstboot install`, run against a fake machine whose install disk is a file)
# against `bmaptool copy` of the same node image onto the same kind of file. Both verify:
# bmaptool checks every mapped range against the bmap's SHA-256 while copying; the
# installer hashes every range on the way in and again when reading it back from the
# disk. Each is run twice (alternating); the better run of each counts. Prints a markdown
# table; docs/performance.md records it.
#
# Not inside the QEMU guest: the node root has no Python, so bmaptool cannot run there.
#
#   BENCH_DIR=/var/tmp/hcikit-bench-install   scratch folder (sparse disk files, removed after)
#   HCIKIT_VM_CACHE=target/vm-cache            where the Debian base is cached (as the VM tiers)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/var/tmp/hcikit-bench-install}
cache=${HCIKIT_VM_CACHE:-$root/target/vm-cache}
rel=$root/target/release
for t in bmaptool sgdisk sfdisk mcopy e2fsck; do
  command -v "$t" >/dev/null || { echo "bench-install: $t missing (bash scripts/setup.sh)" >&2; exit 1; }
done
[[ -x $rel/hcikit && -x $rel/hcikit-firstboot ]] ||
  cargo build --release -p hcikit -p hcikit-firstboot --bins --locked --manifest-path "$root/Cargo.toml"
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

# The minipc example (the scenario the stick is for), next to its secrets.
spec_dir=$work/spec
mkdir -p "$spec_dir"
cp -r "$root/examples/secrets" "$spec_dir/"
chmod 600 "$spec_dir"/secrets/*
cp "$root/examples/minipc.toml" "$spec_dir/minipc.toml"
printf '\n[image]\ninstall-confirm = 0\n' >>"$spec_dir/minipc.toml"
spec=$spec_dir/minipc.toml
export SOURCE_DATE_EPOCH=1700000000
build() { # out-dir extra-args...
  local out=$1
  shift
  "$rel/hcikit" build "$spec" -o "$out" --cache "$cache" --agent "$rel/hcikit-firstboot" "$@" \
    >"$out.log" 2>&1 || { cat "$out.log" >&2; exit 1; }
}
build "$work/nodes"
build "$work/stick" --installer
img=$work/nodes/mini1.img
stick=$work/stick/minipc-installer.img
size=$(stat -c %s "$img")

# A fake machine for the installer: the stick's ESP files in a folder, its root partition
# by PARTUUID, one NVMe-like disk file of the image's size, mini1's MAC.
machine=$work/machine
mkdir -p "$machine/dev/disk/by-partuuid" "$machine/dev/disk/by-id" "$machine/proc" \
  "$machine/sys/class/net/enp1s0/device" "$machine/sys/block/nvme0n1/device"
part() { # image number -> "start_sectors size_sectors uuid"
  sfdisk --json "$1" | python3 -c '
import json, sys
p = json.load(sys.stdin)["partitiontable"]["partitions"][int(sys.argv[1]) - 1]
print(p["start"], p["size"], p["uuid"])' "$2"
}
read -r esp_start _ _ < <(part "$stick" 1)
read -r root_start root_size root_uuid < <(part "$stick" 2)
mkdir -p "$work/esp"
mcopy -s -n -i "$stick@@$((esp_start * 512))" ::/hcikit ::/loader "$work/esp"
dd if="$stick" of="$machine/dev/stickroot" bs=1M iflag=skip_bytes,count_bytes \
  skip=$((root_start * 512)) count=$((root_size * 512)) conv=sparse status=none
ln -s ../../stickroot "$machine/dev/disk/by-partuuid/${root_uuid,,}"
echo "$((size / 512))" >"$machine/sys/block/nvme0n1/size"
echo "QEMU NVMe Ctrl" >"$machine/sys/block/nvme0n1/device/model"
echo "BENCH1" >"$machine/sys/block/nvme0n1/device/serial"
echo "1c:69:7a:00:00:21" >"$machine/sys/class/net/enp1s0/address"
echo "ro hcikit.install=1" >"$machine/proc/cmdline"

ms() { date +%s%3N; }
declare -A best
keep() { # name ms
  if [[ -z ${best[$1]:-} || $2 -lt ${best[$1]} ]]; then best[$1]=$2; fi
}
installer() {
  rm -f "$machine/dev/nvme0n1" "$work/esp/hcikit/logs/"mini1-*.log
  truncate -s "$size" "$machine/dev/nvme0n1"
  sync
  local s e
  s=$(ms)
  "$rel/hcikit-firstboot" install --stick "$work/esp" --root "$machine" --no-finish \
    >"$work/installer.log" 2>&1 || { cat "$work/installer.log" >&2; exit 1; }
  e=$(ms)
  grep -q 'result=installed node=mini1 ' "$work/installer.log" ||
    { cat "$work/installer.log" >&2; exit 1; }
  keep installer $((e - s))
}
bmapcopy() {
  rm -f "$work/bmap-target.raw"
  truncate -s "$size" "$work/bmap-target.raw"
  sync
  local s e
  s=$(ms)
  bmaptool copy --bmap "$img.bmap" "$img" "$work/bmap-target.raw" >"$work/bmaptool.log" 2>&1 ||
    { cat "$work/bmaptool.log" >&2; exit 1; }
  e=$(ms)
  keep bmaptool $((e - s))
}
for _ in 1 2; do
  installer
  bmapcopy
done

# Both results are whole: the partition tables check, and the root file systems (the
# bulk of the data) are byte-identical between the two disks.
for d in "$machine/dev/nvme0n1" "$work/bmap-target.raw"; do
  sgdisk -v "$d" | grep -q 'No problems found' || { sgdisk -v "$d" >&2; exit 1; }
done
read -r r_start r_size _ < <(part "$img" 2)
cmp -n $((r_size * 512)) -i $((r_start * 512)) "$machine/dev/nvme0n1" "$work/bmap-target.raw" ||
  { echo "bench-install: the two root partitions differ" >&2; exit 1; }

mapped=$(grep -o 'mapped=[0-9]*' "$work/installer.log" | head -1 | cut -d= -f2)
python3 - "$mapped" "${best[installer]}" "${best[bmaptool]}" <<'EOF'
import sys
mapped, inst, bmap = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
mbs = lambda ms: mapped / 1e6 / (ms / 1000)
print(f"| tool (mini1, {mapped / 1e6:.0f} MB mapped) | seconds | MB/s of mapped data |")
print("|---|---|---|")
print(f"| `hcikit-firstboot install` (hash in, write, read back, hash) | {inst / 1000:.2f} | {mbs(inst):.0f} |")
print(f"| `bmaptool copy` (hash in, write) | {bmap / 1000:.2f} | {mbs(bmap):.0f} |")
print(f"| installer / bmaptool throughput | {bmap / inst:.2f}x | |")
EOF
