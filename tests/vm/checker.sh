#!/bin/bash
# hcikit VM-test checker. Injected into a test copy of a root file system (never into a
# product image) and run once per boot by hcikit-vmtest.service. Its settings come from
# the fw_cfg entry opt/hcikit/vmtest (shell assignments); its results go to ttyS1, one
# line each: "HCIKIT <key> <value...>", which the host test reads.
#
# Settings: MODE (proof|e2e), NODE, ADDRS_<i> ("ip/prefix" per NIC i, proof mode only),
# PEERS_<i> (peer IPs to ping on NIC i), NICS (names expected, e.g. "ens18 ens19"),
# IFACE_<i>/ADDR_<i>/MTU_<i> (the interface carrying NIC i's address, e2e), EXPECT_MEMBERS,
# DISK_SERIALS, REPORT_FIRSTBOOT.
set -u
OUT=/dev/ttyS1
stty -F "$OUT" raw -echo 2>/dev/null || true
say() { echo "HCIKIT $*" > "$OUT"; }
# The firmware writes to this port too: start on a fresh line.
echo > "$OUT"
fail() { say "fail $*"; }

modprobe qemu_fw_cfg 2>/dev/null || true
CFG=/sys/firmware/qemu_fw_cfg/by_name/opt/hcikit/vmtest/raw
for _ in $(seq 50); do [ -r "$CFG" ] && break; sleep 0.1; done
if [ ! -r "$CFG" ]; then
    say "fail no-fw-cfg"
    exit 0
fi
# bash sources a file by its stat size, which is 0 for sysfs attributes: copy it first.
cat "$CFG" > /run/hcikit-vmtest.env
# shellcheck disable=SC1091
. /run/hcikit-vmtest.env

say "boot node=$NODE uptime=$(cut -d' ' -f1 /proc/uptime) boot_id=$(cat /proc/sys/kernel/random/boot_id)"

# NIC names and MACs as the guest sees them.
i=0
for nic in $NICS; do
    if [ -e "/sys/class/net/$nic" ]; then
        say "nic $nic mac=$(cat "/sys/class/net/$nic/address")"
    else
        fail "nic-missing $nic (have: $(ls /sys/class/net | tr '\n' ' '))"
    fi
    i=$((i + 1))
done

# OSD disks, found by serial (sdX names are assigned in probe order, which varies), and
# whether they carry a signature (the host pre-fills one with ext4).
for serial in ${DISK_SERIALS:-}; do
    d=$(lsblk -dnpo NAME,SERIAL | awk -v s="$serial" '$2 == s {print $1}')
    sig=$(blkid -o value -s TYPE "$d" 2>/dev/null)
    say "disk $serial dev=${d:-missing} type=${sig:-none}"
done

if [ "$MODE" = proof ]; then
    # No hcikit apply here: configure the addresses by hand.
    i=0
    for nic in $NICS; do
        eval "addr=\${ADDRS_$i}"
        ip link set "$nic" up
        ip addr add "$addr" dev "$nic"
        i=$((i + 1))
    done
fi

# Every peer on every network answers (bounded).
ping_all() {
    local i=0 nic peers p ok
    for nic in $NICS; do
        eval "peers=\${PEERS_$i:-}"
        eval "dev=\${IFACE_$i:-$nic}"
        for p in $peers; do
            ok=no
            for _ in $(seq 90); do
                if ping -c1 -W1 -I "$dev" "$p" >/dev/null 2>&1; then ok=yes; break; fi
                sleep 1
            done
            if [ $ok = yes ]; then say "ping $dev $p ok"; else fail "ping $dev $p"; fi
        done
        i=$((i + 1))
    done
}
ping_all
say "pings-done uptime=$(cut -d' ' -f1 /proc/uptime)"

if [ "$MODE" = proof ]; then
    say "done"
    exit 0
fi

# ---- e2e: a node booted from an hcikit image ----

# hcikit-apply: whether it ran on this boot, and that it finished before networking began.
prop() { systemctl show -p "$2" --value "$1"; }
say "apply condition=$(prop hcikit-apply.service ConditionResult) result=$(prop hcikit-apply.service Result) \
finished_at=$(prop hcikit-apply.service ActiveEnterTimestampMonotonic) \
networking_started_at=$(prop networking.service ExecMainStartTimestampMonotonic)"
if [ -e /var/lib/hcikit/apply-pending ]; then say "apply-pending present"; else say "apply-pending absent"; fi

say "hostname $(hostname)"
say "localtime $(readlink /etc/localtime)"
# The RSA host key Proxmox needs: present, private and public halves matching, pinned.
rsa_pub=$(cut -d' ' -f2 /etc/ssh/ssh_host_rsa_key.pub 2>/dev/null || true)
rsa_from_private=$(ssh-keygen -y -f /etc/ssh/ssh_host_rsa_key 2>/dev/null | cut -d' ' -f2 || true)
rsa_pinned=0
[ -n "$rsa_pub" ] && rsa_pinned=$(grep -c "ssh-rsa $rsa_pub" /etc/ssh/ssh_known_hosts 2>/dev/null || true)
say "rsa-host-key present=$([ -n "$rsa_pub" ] && echo yes || echo no) matches=$([ -n "$rsa_pub" ] && [ "$rsa_pub" = "$rsa_from_private" ] && echo yes || echo no) pinned=${rsa_pinned:-0}"
# Root's password hash from the spec, as a digest (the hash itself is a secret).
say "root-hash-sha256 $(getent shadow root | cut -d: -f2 | tr -d '\n' | sha256sum | cut -d' ' -f1)"
# The Debian release the image was built from (trixie for PVE 9, bookworm for PVE 8).
say "os codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}") kernel=$(uname -r)"
for f in /etc/hostname /etc/hosts /etc/network/interfaces; do
    say "file-sha256 $f $(sha256sum < "$f" | cut -d' ' -f1)"
done

# Secrets must be gone from the ESP (apply removes them once installed).
esp=$(blkid -t PARTLABEL=ESP -o device 2>/dev/null | head -1)
[ -z "$esp" ] && esp=$(blkid -t TYPE=vfat -o device 2>/dev/null | head -1)
where=$(findmnt -n -o TARGET -S "$esp" 2>/dev/null | head -1)
if [ -z "$where" ]; then
    mkdir -p /run/hcikit-vmtest-esp
    mount -o ro "$esp" /run/hcikit-vmtest-esp 2>/dev/null && where=/run/hcikit-vmtest-esp
fi
if [ -n "$where" ]; then
    say "esp $esp secrets-left=$(find "$where" -iname 'secrets.tar' | wc -l) files=$(find "$where/hcikit" -type f | wc -l)"
else
    fail "esp-mount ${esp:-not-found}"
fi

# Addresses and MTU as rendered.
i=0
for nic in $NICS; do
    eval "iface=\${IFACE_$i:-$nic}"
    eval "want=\${ADDR_$i:-}"
    eval "mtu=\${MTU_$i:-1500}"
    have=$(ip -o -4 addr show dev "$iface" | awk '{print $4}' | tr '\n' ' ')
    say "addr $iface want=$want have=${have% } mtu=$(cat "/sys/class/net/$iface/mtu" 2>/dev/null) want_mtu=$mtu"
    i=$((i + 1))
done

say "corosync-before active=$(systemctl is-active corosync.service) enabled=$(systemctl is-enabled corosync.service 2>&1)"
say "networkd active=$(systemctl is-active systemd-networkd.service)"

# corosync from the rendered config (installed by apply under the desired folder) and the
# build's key.
conf=${COROSYNC_CONF:-/etc/hcikit/desired/etc/pve/corosync.conf}
key=${COROSYNC_KEY:-/etc/hcikit/corosync/authkey}
if [ -r "$conf" ] && [ -r "$key" ]; then
    install -m 0644 "$conf" /etc/corosync/corosync.conf
    install -m 0400 "$key" /etc/corosync/authkey
    if out=$(corosync -t 2>&1); then say "corosync-config valid"; else fail "corosync-config $(echo "$out" | tail -1)"; fi
    systemctl start corosync.service
    say "corosync-started $(systemctl is-active corosync.service)"
else
    fail "corosync-files conf=$conf key=$key"
fi

# The agent's own unit ran (or is running) its cluster run; without Proxmox it must stop
# at the first Proxmox step. Reported in the background once the unit has failed, or
# after a while if the agent keeps retrying that step.
if [ -n "${REPORT_FIRSTBOOT:-}" ]; then
    (
        for _ in $(seq 50); do
            [ "$(prop hcikit-firstboot.service ActiveState)" != activating ] && break
            sleep 3
        done
        say "firstboot-unit state=$(prop hcikit-firstboot.service ActiveState) result=$(prop hcikit-firstboot.service Result)"
        journalctl -b -u hcikit-firstboot.service -o cat --no-pager 2>&1 | tail -8 | sed 's/^/HCIKIT firstboot-log | /' > "$OUT"
        echo "HCIKIT firstboot-status $(hcikit-firstboot status --json 2>&1 | tr -d '\n')" > "$OUT"
        if [ -e /var/lib/hcikit/firstboot-pending ]; then say "firstboot-pending present"; else say "firstboot-pending absent"; fi
    ) &
fi

# Report membership, quorum and link state every few seconds until powered off, so the
# host can watch the cluster through a node being killed and coming back.
dumped=
while true; do
    q=$(corosync-quorumtool -s 2>/dev/null)
    quorate=$(echo "$q" | awk -F: '/^Quorate:/ {gsub(/ /,"",$2); print $2}')
    members=$(echo "$q" | awk -F: '/^Nodes:/ {gsub(/ /,"",$2); print $2}')
    # One "nodeid: N: connected" line per peer and link (the local node shows "localhost").
    links=$(corosync-cfgtool -s 2>/dev/null | grep -c -E ':[[:space:]]+connected' || true)
    say "quorum t=$(cut -d' ' -f1 /proc/uptime) quorate=${quorate:-none} nodes=${members:-0} connected=$links"
    if [ -z "$dumped" ] && [ "${quorate:-}" = Yes ] && [ "${members:-0}" = "${EXPECT_MEMBERS:-0}" ]; then
        dumped=1
        corosync-quorumtool -s 2>&1 | sed 's/^/HCIKIT quorumtool | /' > "$OUT"
        corosync-cfgtool -s 2>&1 | sed 's/^/HCIKIT cfgtool | /' > "$OUT"
    fi
    sleep 3
done
