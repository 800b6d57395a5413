#!/usr/bin/env bash
# Probe: does OVMF -> firmware PXE -> iPXE -> boot.ipxe from `hcikit serve` work here?
# One TCG guest, 2 GiB RAM, no user-mode network: its only NIC is a tap device inside a
# network namespace this script creates, where dnsmasq (DHCP + TFTP) and `hcikit serve`
# listen on 10.77.0.1. Nothing in the namespace has a route out.
#
# Usage: tests/vm/pxe-probe.sh HCIKIT_BIN MAC WORKDIR
# Prints the guest's serial console and the server's log into WORKDIR and exits 0 when
# the console shows the script's output for MAC.
set -euo pipefail
bin=$1 mac=$2 work=$3
ns=hcikit-pxe-$$
mkdir -p "$work/tftp"
cp /usr/lib/ipxe/ipxe.efi "$work/tftp/"

cleanup() {
    [[ -n ${qpid:-} ]] && kill "$qpid" 2>/dev/null || true
    [[ -n ${spid:-} ]] && kill "$spid" 2>/dev/null || true
    [[ -n ${dpid:-} ]] && kill "$dpid" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add br0 type bridge
ip -n "$ns" addr add 10.77.0.1/24 dev br0
ip -n "$ns" link set br0 up
ip -n "$ns" tuntap add dev tap0 mode tap
ip -n "$ns" link set tap0 master br0
ip -n "$ns" link set tap0 up

# A full DHCP server here (the namespace has no other); the iPXE rules are the ones of
# dnsmasq.conf.example.
cat >"$work/dnsmasq.conf" <<EOF
port=0
interface=br0
bind-interfaces
dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,10m
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
ip netns exec "$ns" "$bin" -v serve "$work/pxe" --listen 10.77.0.1:8080 \
    >"$work/serve.out" 2>"$work/serve.log" &
spid=$!
sleep 1

cp /usr/share/OVMF/OVMF_VARS.fd "$work/vars.fd"
start=$(date +%s)
ip netns exec "$ns" qemu-system-x86_64 -machine q35 -accel tcg -m 2048 -smp 1 \
    -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd \
    -drive if=pflash,format=raw,file="$work/vars.fd" \
    -nic none -nodefaults -display none -serial file:"$work/console.log" \
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
    -device virtio-net-pci,netdev=n0,mac="$mac",romfile=/usr/lib/ipxe/qemu/efi-virtio.rom &
qpid=$!
for _ in $(seq 1 150); do
    if grep -aq 'hcikit: \(installing node\|MAC .* is not a node\)' "$work/console.log"; then
        echo "script ran after $(($(date +%s) - start)) s"
        sleep 3
        exit 0
    fi
    sleep 2
done
echo "no script output within 300 s" >&2
exit 1
