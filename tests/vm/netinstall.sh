#!/usr/bin/env bash
# The network install lab: a network namespace of the test's own with a bridge, dnsmasq
# (DHCP + TFTP) and `hcikit serve` on 10.77.0.1, and one QEMU guest per MAC on a tap
# device of that bridge, each booting OVMF -> firmware PXE -> iPXE -> boot.ipxe ->
# the installer initrd, which streams its node onto a blank NVMe disk beside decoy disks.
# Nothing in the namespace has a route out: no guest packet can leave it.
#
# Usage: tests/vm/netinstall.sh HCIKIT_BIN PXE_TREE WORKDIR TIMEOUT_S GUEST...
#   GUEST = NAME:MAC:TARGET_IMG[:DECOY_IMG[:DECOY_MODEL:DECOY_SERIAL]]
#   Each guest runs until it powers off, its console matches $STOP_PATTERN (an extended
#   regular expression), or TIMEOUT_S passes; then it is stopped (WORKDIR/NAME.stopped).
# Writes WORKDIR/NAME.console, WORKDIR/NAME.seconds (power-on to power-off) and
# WORKDIR/serve.json (the server's --json report lines) and serve.log.
set -euo pipefail
bin=$1 tree=$2 work=$3 timeout=$4
stop=${STOP_PATTERN:-}
shift 4
ns=hcikit-net-$$
mkdir -p "$work/tftp"
cp /usr/lib/ipxe/ipxe.efi "$work/tftp/"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -n ${spid:-} ]] && kill "$spid" 2>/dev/null || true
    [[ -n ${dpid:-} ]] && kill "$dpid" 2>/dev/null || true
    wait 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add br0 type bridge
ip -n "$ns" addr add 10.77.0.1/24 dev br0
ip -n "$ns" link set br0 up

cat >"$work/dnsmasq.conf" <<EOF
port=0
interface=br0
bind-interfaces
dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,1h
log-dhcp
enable-tftp
tftp-root=$work/tftp
dhcp-userclass=set:ipxe,iPXE
dhcp-boot=tag:!ipxe,ipxe.efi
dhcp-boot=tag:ipxe,http://10.77.0.1:8080/boot.ipxe
EOF
ip netns exec "$ns" dnsmasq --conf-file="$work/dnsmasq.conf" --no-daemon \
    --pid-file="$work/dnsmasq.pid" >"$work/dnsmasq.log" 2>&1 &
dpid=$!
ip netns exec "$ns" "$bin" -v serve "$tree" --listen 10.77.0.1:8080 --json \
    >"$work/serve.json" 2>"$work/serve.log" &
spid=$!
sleep 1

i=0
for g in "$@"; do
    IFS=: read -r name m1 m2 m3 m4 m5 m6 target decoy dmodel dserial <<<"$g"
    mac="$m1:$m2:$m3:$m4:$m5:$m6"
    ip -n "$ns" tuntap add dev "tap$i" mode tap
    ip -n "$ns" link set "tap$i" master br0
    ip -n "$ns" link set "tap$i" up
    cp /usr/share/OVMF/OVMF_VARS.fd "$work/$name.vars.fd"
    # The devices sit where tests/vm/install.rs puts them (AHCI at slot 7, the NVMe disk
    # first, the NIC at slot 0x12), so the boot entry the installer sets names the same
    # device when the installed disk boots in the VM tier's lab.
    disks=()
    [[ -n ${decoy:-} ]] && disks+=(-device ahci,id=ahci,addr=0x7)
    disks+=(-drive "if=none,id=t,format=raw,cache=unsafe,file=$target"
        -device "nvme,drive=t,serial=HCIKITNVME$((i + 1))")
    if [[ -n ${decoy:-} ]]; then
        disks+=(-drive "if=none,id=dc,format=raw,cache=unsafe,file=$decoy"
            -device "ide-hd,drive=dc,bus=ahci.0,model=${dmodel:-QEMU HARDDISK},serial=${dserial:-DECOY$i}")
    fi
    (
        start=$(date +%s)
        # SHA extensions: the installer hashes every byte twice, and TCG runs them as one
        # helper call each (real mini PCs have them too).
        ip netns exec "$ns" qemu-system-x86_64 -machine pc -accel tcg \
            -cpu qemu64,+ssse3,+sse4.1,+sse4.2,+sha-ni \
            -m 2048 -smp 1 -nodefaults -no-user-config -display none -no-reboot \
            -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd \
            -drive if=pflash,format=raw,file="$work/$name.vars.fd" \
            -serial file:"$work/$name.console" -nic none \
            -netdev "tap,id=n0,ifname=tap$i,script=no,downscript=no" \
            "${disks[@]}" \
            -device "virtio-net-pci,netdev=n0,mac=$mac,addr=0x12,romfile=/usr/lib/ipxe/qemu/efi-virtio.rom,bootindex=1" &
        q=$!
        # A guest ends by powering off; one that stopped with a message (unknown MAC,
        # failed install: both halt rather than loop) is stopped here once it said so.
        while kill -0 "$q" 2>/dev/null; do
            if (($(date +%s) - start > timeout)) || { [[ -n $stop ]] &&
                grep -aqE "$stop" "$work/$name.console" 2>/dev/null; }; then
                sleep 3
                kill "$q" 2>/dev/null || true
                echo stopped >"$work/$name.stopped"
            fi
            sleep 2
        done
        wait "$q" || true
        echo $(($(date +%s) - start)) >"$work/$name.seconds"
    ) &
    pids+=($!)
    i=$((i + 1))
done
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()
sleep 1
