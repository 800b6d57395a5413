#!/usr/bin/env python3
"""Writes tests/golden/spec/fail/<case>.toml: the base spec below with one mistake each.

Run once when adding cases, then `HCIKIT_BLESS=1 cargo test -p hcikit-tests --test
spec_golden` writes the expected `.txt` files; review them before committing. Each
generated file starts with a comment saying what it pins.
"""
import os
import sys

BASE = '''[cluster]
name = "lab"
domain = "lab.example.com"
timezone = "Europe/Berlin"
keyboard = "en-us"
root-password-hash = "$6$hcikitdemo$rpRTkyBNYE0016JoKdtyZEWBzyr1m2n6H37k/TywmL14O44i5h46JNkfgcJnnmTWrsDhapQcnPI.WTuxIShWU."

[networks.mgmt]
interface = "ens18"
bridge = "vmbr0"
cidr = "10.2.21.0/24"
gateway = "10.2.21.1"
corosync-link = 0

[networks.storage]
interface = "ens19"
cidr = "10.2.22.0/24"
speed = "10G"
corosync-link = 1

[[nodes]]
name = "pve1"
addresses = { mgmt = "10.2.21.66", storage = "10.2.22.66" }
mac = "bc:24:11:00:00:01"
install-disk = "/dev/sda"
osd-disks = ["/dev/sdb"]

[[nodes]]
name = "pve2"
addresses = { mgmt = "10.2.21.67", storage = "10.2.22.67" }
mac = "bc:24:11:00:00:02"
install-disk = "/dev/sda"
osd-disks = ["/dev/sdb"]

[[nodes]]
name = "pve3"
addresses = { mgmt = "10.2.21.68", storage = "10.2.22.68" }
mac = "bc:24:11:00:00:03"
install-disk = "/dev/sda"
osd-disks = ["/dev/sdb"]

[ceph]
release = "reef"
public-network = "storage"

[[ceph.pools]]
name = "cephrdb01"
add-storage = true

[[ceph.cephfs]]
name = "cephfs01"
pg-num = 128
add-storage = true

[datacenter]
migration-network = "storage"
bwlimit = { migration = "90%" }

[[ha.groups]]
name = "prefer-pve1"
nodes = ["pve1:2", "pve2", "pve3"]

[[ha.resources]]
sid = "vm:100"
group = "prefer-pve1"

[[notifications.smtp]]
name = "smtp-relay"
server = "mail.example.com"
mode = "starttls"
username = "pve-alerts"
password-file = "secrets/smtp-password"
from-address = "pve@lab.example.com"
mailto-user = ["root@pam"]
'''

# (case, what it pins, [(old, new), ...])
CASES = [
    ("cluster-name-too-long", "cluster names have at most 15 characters",
     [('name = "lab"', 'name = "homelab-cluster-01"')]),
    ("cluster-name-bad-chars", "cluster names use the pve-node format",
     [('name = "lab"', 'name = "lab_1"')]),
    ("unknown-key", "a misspelt key is rejected with the valid keys listed",
     [('timezone = "Europe/Berlin"', 'time-zone = "Europe/Berlin"')]),
    ("unknown-key-nested", "unknown keys deep inside an array of tables name their full key",
     [('osd-disks = ["/dev/sdb"]\n\n[[nodes]]\nname = "pve2"', 'osd-disks = [{ device = "/dev/sdb", wipe = true, clas = "ssd" }]\n\n[[nodes]]\nname = "pve2"')]),
    ("type-error", "a value of the wrong TOML type names its key and line",
     [('speed = "10G"\ncorosync-link = 1', 'speed = "10G"\ncorosync-link = "1"')]),
    ("missing-domain", "required keys are reported by their own name",
     [('domain = "lab.example.com"\n', '')]),
    ("toml-syntax", "a TOML syntax error gives the line",
     [('[networks.storage]', '[networks.storage')]),
    ("address-outside-network", "node addresses lie inside their network",
     [('storage = "10.2.22.67"', 'storage = "10.2.23.67"')]),
    ("address-with-prefix", "node addresses are bare; the prefix comes from the network",
     [('mgmt = "10.2.21.66"', 'mgmt = "10.2.21.66/24"')]),
    ("address-missing", "every node has an address on every network",
     [('addresses = { mgmt = "10.2.21.68", storage = "10.2.22.68" }', 'addresses = { mgmt = "10.2.21.68" }')]),
    ("address-unknown-network", "addresses name existing networks",
     [('addresses = { mgmt = "10.2.21.68", storage = "10.2.22.68" }', 'addresses = { mgmt = "10.2.21.68", storage = "10.2.22.68", backup = "10.2.23.68" }')]),
    ("address-duplicate", "addresses are unique per network",
     [('storage = "10.2.22.68"', 'storage = "10.2.22.66"')]),
    ("address-is-broadcast", "the broadcast address is not a host address",
     [('storage = "10.2.22.68"', 'storage = "10.2.22.255"')]),
    ("node-name-duplicate", "node names are unique",
     [('name = "pve3"', 'name = "pve2"')]),
    ("node-name-invalid", "node names are valid host names",
     [('name = "pve3"', 'name = "pve_3"')]),
    ("mac-duplicate", "MACs are unique",
     [('mac = "bc:24:11:00:00:03"', 'mac = "BC:24:11:00:00:01"')]),
    ("mac-invalid", "MACs have six hex octets",
     [('mac = "bc:24:11:00:00:03"', 'mac = "bc:24:11:00:03"')]),
    ("gateway-outside", "the gateway lies inside its network",
     [('gateway = "10.2.21.1"', 'gateway = "10.2.1.1"')]),
    ("gateway-is-node", "the gateway is not a node address",
     [('gateway = "10.2.21.1"', 'gateway = "10.2.21.66"')]),
    ("gateway-twice", "only one network has the default gateway",
     [('speed = "10G"', 'speed = "10G"\ngateway = "10.2.22.1"')]),
    ("cidr-host-bits", "a network CIDR has no host bits",
     [('cidr = "10.2.22.0/24"', 'cidr = "10.2.22.66/24"')]),
    ("corosync-link-range", "corosync links are 0-7",
     [('corosync-link = 1', 'corosync-link = 8')]),
    ("corosync-link-duplicate", "each network has its own link number",
     [('corosync-link = 1', 'corosync-link = 0')]),
    ("corosync-no-link0", "one network must carry link 0",
     [('corosync-link = 0', 'corosync-link = 2')]),
    ("interface-and-bond", "a network has a NIC or a bond, not both",
     [('interface = "ens19"', 'interface = "ens19"\nbond = { slaves = ["ens20", "ens21"], mode = "802.3ad" }')]),
    ("bond-invalid", "bonds need slaves and a valid mode",
     [('interface = "ens19"', 'bond = { slaves = [], mode = "lacp" }')]),
    ("bond-lacp-rate-mode", "lacp-rate only applies to 802.3ad",
     [('interface = "ens19"', 'bond = { slaves = ["ens19", "ens20"], mode = "active-backup", lacp-rate = "fast" }')]),
    ("interface-reused", "a NIC belongs to one network",
     [('interface = "ens19"', 'interface = "ens18"')]),
    ("interface-name-too-long", "Linux interface names have at most 15 characters",
     [('interface = "ens19"', 'interface = "enx0123456789abcd"')]),
    ("mtu-range", "MTU is 576-9216",
     [('speed = "10G"', 'speed = "10G"\nmtu = 65000')]),
    ("speed-invalid", "speeds are Mbit/s or 1G-style strings",
     [('speed = "10G"', 'speed = "fast"')]),
    ("mons-too-few", "three nodes need three monitors",
     [('public-network = "storage"', 'public-network = "storage"\nmons = ["pve1"]')]),
    ("mons-unknown-node", "role lists name existing nodes",
     [('public-network = "storage"', 'public-network = "storage"\nmons = ["pve1", "pve2", "pve4"]\nmgrs = ["pve1", "pve1"]')]),
    ("size-exceeds-osd-hosts", "replicas need as many hosts with OSDs",
     [('osd-disks = ["/dev/sdb"]\n\n[ceph]', 'osd-disks = []\n\n[ceph]')]),
    ("min-size-above-size", "min-size is at most size",
     [('public-network = "storage"', 'public-network = "storage"\nsize = 2\nmin-size = 3')]),
    ("size-zero", "size is at least 1",
     [('public-network = "storage"', 'public-network = "storage"\nsize = 0')]),
    ("pg-num-not-power-of-two", "pg-num is a power of two",
     [('pg-num = 128', 'pg-num = 100')]),
    ("pool-collides-cephfs", "pools do not take the names CephFS creates",
     [('name = "cephrdb01"', 'name = "cephfs01_data"\nadd-storage = false\n\n[[ceph.pools]]\nname = "cephrdb01"')]),
    ("storage-id-invalid", "add-storage needs a valid storage id",
     [('name = "cephrdb01"', 'name = "CephRBD"')]),
    ("storage-id-collision", "pool and CephFS storages need different ids",
     [('name = "cephrdb01"', 'name = "cephfs01"')]),
    ("storage-id-reserved", "local is an existing storage",
     [('name = "cephrdb01"', 'name = "local"')]),
    ("pool-application-storage", "only rbd pools become storages",
     [('name = "cephrdb01"', 'name = "cephrdb01"\napplication = "rgw"')]),
    ("osd-duplicate", "an OSD disk is listed once per node",
     [('osd-disks = ["/dev/sdb"]\n\n[[nodes]]\nname = "pve2"', 'osd-disks = ["/dev/sdb", "/dev/sdb"]\n\n[[nodes]]\nname = "pve2"')]),
    ("osd-is-install-disk", "the install disk is never an OSD",
     [('osd-disks = ["/dev/sdb"]\n\n[[nodes]]\nname = "pve2"', 'osd-disks = ["/dev/sda"]\n\n[[nodes]]\nname = "pve2"')]),
    ("osd-relative-path", "disks are absolute paths under /dev",
     [('osd-disks = ["/dev/sdb"]\n\n[[nodes]]\nname = "pve2"', 'osd-disks = ["sdb"]\n\n[[nodes]]\nname = "pve2"')]),
    ("ceph-network-unknown", "Ceph networks exist",
     [('public-network = "storage"', 'public-network = "backend"\ncluster-network = "replication"')]),
    ("ceph-public-required", "with two networks the Ceph public network must be named",
     [('public-network = "storage"\n', '')]),
    ("ceph-release-pve", "tentacle is not available on PVE 8",
     [('release = "reef"', 'release = "tentacle"')]),
    ("ceph-release-unknown", "unknown Ceph releases are rejected",
     [('release = "reef"', 'release = "pacific"')]),
    ("ceph-repository", "repositories are no-subscription/enterprise/test",
     [('release = "reef"', 'release = "reef"\nrepository = "community"')]),
    ("ceph-config-managed", "options hcikit writes cannot be overridden",
     [('[[ceph.pools]]', '[ceph.config.global]\nfsid = "0000"\n\n[ceph.config.frobnicator]\nx = 1\n\n[[ceph.pools]]')]),
    ("cephfs-without-mds", "a CephFS needs an MDS",
     [('public-network = "storage"', 'public-network = "storage"\nmds = []')]),
    ("mds-digit-name", "MDS ids cannot start with a digit",
     [('name = "pve3"', 'name = "3pve"'), ('"pve3"]', '"3pve"]')]),
    ("migration-network-unknown", "the migration network exists",
     [('migration-network = "storage"', 'migration-network = "ceph"')]),
    ("bwlimit-no-speed", "a percentage needs the link speed",
     [('speed = "10G"\n', '')]),
    ("bwlimit-range", "percentages are 1-100",
     [('migration = "90%"', 'migration = "150%"')]),
    ("bwlimit-unknown-key", "bwlimit keys are the datacenter.cfg ones",
     [('migration = "90%"', 'migration = "90%", backup = 1000')]),
    ("ha-shutdown-policy", "HA shutdown policies are freeze/failover/conditional/migrate",
     [('bwlimit = { migration = "90%" }', 'bwlimit = { migration = "90%" }\nha-shutdown-policy = "shutdown"')]),
    ("ha-group-unknown-node", "HA group members are nodes",
     [('nodes = ["pve1:2", "pve2", "pve3"]', 'nodes = ["pve1:2", "pve2", "pve9", "pve3:x"]')]),
    ("ha-resource-unknown-group", "HA resources name existing groups",
     [('group = "prefer-pve1"', 'group = "prefer-pve2"')]),
    ("ha-sid-invalid", "HA resource ids are vm:<id>/ct:<id>",
     [('sid = "vm:100"', 'sid = "qemu/100"\nstate = "running"\nmax-restart = 20')]),
    ("smtp-no-from", "SMTP targets need a from-address",
     [('from-address = "pve@lab.example.com"\n', '')]),
    ("smtp-bad-recipient", "mailto entries are addresses",
     [('mailto-user = ["root@pam"]', 'mailto = ["ops at example.com"]\nmailto-user = ["root"]')]),
    ("smtp-user-without-password", "a username needs a password-file",
     [('password-file = "secrets/smtp-password"\n', '')]),
    ("smtp-mode-port", "mode and port are checked",
     [('mode = "starttls"', 'mode = "ssl"\nport = 70000')]),
    ("secret-file-missing", "secret files must exist, named by key",
     [('password-file = "secrets/smtp-password"', 'password-file = "secrets/no-such-file"')]),
    ("matcher-unknown-target", "matcher and default-matcher targets exist",
     [('mailto-user = ["root@pam"]', 'mailto-user = ["root@pam"]\n\n[[notifications.matchers]]\nname = "errors"\ntargets = ["smtp-relay", "gotify"]\nmatch-severity = ["error", "critical"]\n\n[notifications]\ndefault-matcher-targets = ["pager"]')]),
    ("pve-version", "PVE 8 or 9",
     [('keyboard = "en-us"', 'keyboard = "en-us"\npve-version = 7')]),
    ("keyboard-invalid", "keyboards use datacenter.cfg codes",
     [('keyboard = "en-us"', 'keyboard = "us"')]),
    ("timezone-invalid", "time zones are IANA names",
     [('timezone = "Europe/Berlin"', 'timezone = "Berlin Time"')]),
    ("root-password-plain", "the root password is a crypt hash, not the password",
     [('root-password-hash = "$6$hcikitdemo$rpRTkyBNYE0016JoKdtyZEWBzyr1m2n6H37k/TywmL14O44i5h46JNkfgcJnnmTWrsDhapQcnPI.WTuxIShWU."', 'root-password-hash = "hunter2"')]),
    ("ssh-key-invalid", "admin keys are OpenSSH public keys; private keys are refused without echoing them",
     [('keyboard = "en-us"', 'keyboard = "en-us"\nadmin-ssh-keys = ["ssh-ed25519 not-base64 me@host", "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA"]')]),
    ("realm-incomplete", "realms need their type's main options",
     [('[[notifications.smtp]]', '[[realms]]\nname = "corp"\ntype = "ldap"\nserver1 = "ldap.corp.example.com"\nissuer-url = "https://id.example.com"\n\n[[realms]]\nname = "pam"\ntype = "kerberos"\n\n[[notifications.smtp]]')]),
    ("image-sizes", "image sizes parse and leave room for root",
     [('[[notifications.smtp]]', '[image]\ndisk-size = "4G"\nesp-size = "lots"\nsuite = "trixie"\n\n[[notifications.smtp]]')]),
    ("firstboot-durations", "first-boot durations parse and backoff <= max-backoff",
     [('[[notifications.smtp]]', '[firstboot]\npeer-timeout = "soon"\nbackoff = "2m"\nmax-backoff = 60\nceph-install = "apt"\n\n[[notifications.smtp]]')]),
    ("network-renamed", "nodes name networks that exist, and cover every network",
     [('[networks.mgmt]', '[networks.mgmtx]')]),
    ("multi-error", "every error is reported at once",
     [('name = "lab"', 'name = "lab cluster"'),
      ('corosync-link = 1', 'corosync-link = 9'),
      ('storage = "10.2.22.67"', 'storage = "10.2.23.67"'),
      ('mac = "bc:24:11:00:00:03"', 'mac = "bc:24:11:00:00:01"'),
      ('name = "cephrdb01"', 'name = "cephrdb01"\npg-num = 100'),
      ('migration = "90%"', 'migration = "190%"'),
      ('group = "prefer-pve1"', 'group = "nope"'),
      ('from-address = "pve@lab.example.com"\n', '')]),
]


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fail")
    for name, what, edits in CASES:
        text = BASE
        for old, new in edits:
            if old not in text:
                sys.exit(f"{name}: {old!r} not in base")
            text = text.replace(old, new, 1)
        with open(os.path.join(out, name + ".toml"), "w") as f:
            f.write(f"# Pins: {what}.\n{text}")
    print(f"{len(CASES)} cases")


if __name__ == "__main__":
    main()
