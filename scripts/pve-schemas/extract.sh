#!/bin/sh
# Regenerates sim/schemas/pve<N>.json from Proxmox's source: exports each repository at
# the ref sources.txt names into a temporary tree and runs extract.pl over it.
#
#   scripts/pve-schemas/extract.sh MIRRORS [OUTDIR]
#
# MIRRORS holds one git directory per repository, named <repo> or proxmox+<repo>/repo
# (e.g. a `git clone --mirror https://git.proxmox.com/git/pve-common.git pve-common`).
# Needs perl and the Debian packages libjson-perl libhttp-message-perl libclone-perl
# libnet-ip-perl liburi-perl libtimedate-perl libnet-ssleay-perl libio-socket-ssl-perl
# libcrypt-openssl-rsa-perl libnet-dns-perl libuuid-perl libdevel-cycle-perl
# libstring-shellquote-perl libnet-ldap-perl libdigest-hmac-perl; anything else is stubbed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mirrors=${1:?usage: extract.sh MIRRORS [OUTDIR]}
outdir=${2:-$here/../../sim/schemas}
tmp=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT

gitdir() {
    for d in "$mirrors/$1" "$mirrors/proxmox+$1/repo" "$mirrors/$1.git"; do
        [ -d "$d" ] && { echo "$d"; return; }
    done
    echo "no mirror for $1 under $mirrors" >&2
    exit 1
}

for major in 8 9; do
    args=""
    grep -v '^#' "$here/sources.txt" | awk -v m="$major" '$1 == m { print $2, $3 }' >"$tmp/list"
    while read -r repo ref; do
        g=$(gitdir "$repo")
        sha=$(git --git-dir="$g" rev-parse "$ref^{commit}")
        mkdir -p "$tmp/$major/$repo"
        git --git-dir="$g" archive "$sha" | tar -x -C "$tmp/$major/$repo"
        # pve-cluster generates PVE::Cluster::IPCConst at build time (src/PVE/Cluster/Makefile).
        if [ "$repo" = pve-cluster ]; then
            c="$tmp/$major/$repo/src/PVE/Cluster"
            awk -f "$c/IPCConst.pm.awk" "$tmp/$major/$repo/src/pmxcfs/cfs-ipc-ops.h" >"$c/IPCConst.pm"
        fi
        # pve-manager generates PVE::pvecfg from debian/changelog (top-level Makefile,
        # PVE/Makefile); PVE::Ceph::Releases reads the major release from it.
        if [ "$repo" = pve-manager ]; then
            ver=$(sed -n '1s/.*(\([^)]*\)).*/\1/p' "$tmp/$major/$repo/debian/changelog")
            rel=$(echo "$ver" | cut -d. -f1-2)
            sed "s/@VERSION@/$ver/;s/@PVERELEASE@/$rel/;s/@PACKAGE@/pve-manager/;s/@REPOID@/$sha/" \
                "$tmp/$major/$repo/PVE/pvecfg.pm.in" >"$tmp/$major/$repo/PVE/pvecfg.pm"
            args="$args --version pve-manager=$ver"
        fi
        # pve-manager keeps its modules at the top level, the others under src/.
        if [ -d "$tmp/$major/$repo/src/PVE" ]; then inc="$tmp/$major/$repo/src"; else inc="$tmp/$major/$repo"; fi
        args="$args --commit $repo=$sha -I $inc"
    done <"$tmp/list"
    # shellcheck disable=SC2086
    perl "$here/extract.pl" --major "$major" $args >"$tmp/pve$major.json"
    mv "$tmp/pve$major.json" "$outdir/pve$major.json"
    echo "wrote $outdir/pve$major.json"
done
