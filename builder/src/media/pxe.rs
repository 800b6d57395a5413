//! The network-install tree (`hcikit build --pxe` → `OUT/pxe/`): the iPXE script that picks
//! a node by MAC, the kernel, the payload (the shared root compressed once, each node's
//! disk head and tail, each node's bmap) with every payload hash pinned in the script, a
//! dnsmasq proxy-DHCP example, and SHA256SUMS.
//!
//! A node's `<node>.head.zst`, `root.ext4.zst` and `<node>.tail.zst` concatenated are that
//! node's `.img.zst` (zstd frames concatenate), so the installer streams three files and
//! never holds the image in memory.

use crate::image::output::Staged;
use anyhow::{Context, Result};
use hcikit_firstboot::install::payload::{Manifest, NodePayload, Segment};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

/// The tree's folder below the build's output folder.
pub const PXE_DIR: &str = "pxe";
pub const SCRIPT: &str = "boot.ipxe";
pub const KERNEL: &str = "vmlinuz";
pub const INITRD: &str = "initrd.img";
pub const ROOT: &str = "root.ext4.zst";
pub const DNSMASQ: &str = "dnsmasq.conf.example";
pub use hcikit_firstboot::install::net::MANIFEST;
/// Where the script looks for the tree when the build was given no URL: `hcikit serve`'s
/// port on the proxy-DHCP server (in proxy mode dnsmasq names itself as next-server).
pub const DEFAULT_BASE: &str = "http://${next-server}:8080";

/// One node's part of the payload.
pub struct PxeNode {
    pub name: String,
    /// Lower-case, colon-separated.
    pub mac: String,
    /// zstd frame of the disk from byte 0 to the root partition: GPT and ESP.
    pub head_zst: Vec<u8>,
    /// zstd frame of the disk after the root partition: the backup GPT.
    pub tail_zst: Vec<u8>,
    /// The node's whole-disk bmap (bmaptool's format).
    pub bmap: String,
    /// The installer's entry for the node, without segments (filled in here).
    pub payload: NodePayload,
}

/// Everything the tree is made of.
pub struct PxeInput<'a> {
    pub cluster: &'a str,
    pub kernel: &'a [u8],
    /// The installer initrd; `None` leaves it out and the script says so instead of
    /// booting (see [`boot_script`]).
    pub initrd: Option<&'a [u8]>,
    /// The shared root's zstd frame, as the build cached it.
    pub root_zst: &'a Path,
    pub nodes: Vec<PxeNode>,
    /// The Plan's kernel arguments, passed on to the installer's kernel too.
    pub kernel_cmdline: &'a [String],
    /// The URL the tree is served at (`--pxe-url`); default [`DEFAULT_BASE`].
    pub base_url: Option<&'a str>,
    /// The installer manifest without nodes (cluster, after-install).
    pub manifest: Manifest,
    /// Image byte offsets of the shared root and of the tail.
    pub root_start: u64,
    pub root_end: u64,
    pub disk_size: u64,
}

/// The SHA-256 of one node's payload files, as pinned in the script.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct NodeHashes {
    pub node: String,
    pub mac: String,
    pub root: String,
    pub head: String,
    pub tail: String,
    pub bmap: String,
    /// `install.json`, the same for every node.
    pub manifest: String,
}

/// Writes `out/pxe/` (staged, renamed into place at the end) and returns the hashes
/// pinned per node.
pub fn write_tree(out_dir: &Path, input: &PxeInput) -> Result<Vec<NodeHashes>> {
    let dir = out_dir.join(PXE_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Staged::clean_stale(&dir);
    let mut staged = Staged::new(&dir);
    let mut sums = Vec::new();
    type Sums = Vec<(String, String)>;
    fn put(
        staged: &mut Staged,
        sums: &mut Sums,
        name: &str,
        mode: u32,
        b: &[u8],
    ) -> Result<String> {
        let (mut f, _) = staged.create(name, mode)?;
        f.write_all(b)?;
        let h = hex::encode(Sha256::digest(b));
        sums.push((name.to_string(), h.clone()));
        Ok(h)
    }
    put(&mut staged, &mut sums, KERNEL, 0o644, input.kernel)?;
    if let Some(initrd) = input.initrd {
        put(&mut staged, &mut sums, INITRD, 0o644, initrd)?;
    }
    let root_sha = {
        let (mut f, _) = staged.create(ROOT, 0o644)?;
        let mut src = std::fs::File::open(input.root_zst)
            .with_context(|| format!("opening {}", input.root_zst.display()))?;
        let mut tee = HashingWriter {
            inner: &mut f,
            hash: Sha256::new(),
        };
        std::io::copy(&mut src, &mut tee).context("copying the root")?;
        let h = hex::encode(tee.hash.finalize());
        sums.push((ROOT.to_string(), h.clone()));
        h
    };
    let mut hashes = Vec::new();
    let mut manifest = input.manifest.clone();
    manifest.nodes.clear();
    for n in &input.nodes {
        // The head carries the node's ESP with its private keys and secrets: 0600, like
        // the images.
        let head = put(
            &mut staged,
            &mut sums,
            &head_name(&n.name),
            0o600,
            &n.head_zst,
        )?;
        let tail = put(
            &mut staged,
            &mut sums,
            &tail_name(&n.name),
            0o644,
            &n.tail_zst,
        )?;
        let bmap = put(
            &mut staged,
            &mut sums,
            &bmap_name(&n.name),
            0o644,
            n.bmap.as_bytes(),
        )?;
        let mut p = n.payload.clone();
        p.bmap = bmap_name(&n.name);
        p.bmap_sha256 = bmap.clone();
        p.image_size = input.disk_size;
        p.segments = vec![
            Segment::Image {
                path: head_name(&n.name),
                zstd: true,
                image_offset: 0,
                length: input.root_start,
                sha256: head.clone(),
            },
            Segment::Image {
                path: ROOT.into(),
                zstd: true,
                image_offset: input.root_start,
                length: input.root_end - input.root_start,
                sha256: root_sha.clone(),
            },
            Segment::Image {
                path: tail_name(&n.name),
                zstd: true,
                image_offset: input.root_end,
                length: input.disk_size - input.root_end,
                sha256: tail.clone(),
            },
        ];
        manifest.nodes.push(p);
        hashes.push(NodeHashes {
            node: n.name.clone(),
            mac: n.mac.clone(),
            root: root_sha.clone(),
            head,
            tail,
            bmap,
            manifest: String::new(),
        });
    }
    let mut mj = serde_json::to_vec_pretty(&manifest)?;
    mj.push(b'\n');
    let msha = put(&mut staged, &mut sums, MANIFEST, 0o644, &mj)?;
    for h in &mut hashes {
        h.manifest = msha.clone();
    }
    let script = boot_script(
        input.cluster,
        &hashes,
        input.base_url,
        input.initrd.is_some(),
        input.kernel_cmdline,
    );
    put(&mut staged, &mut sums, SCRIPT, 0o644, script.as_bytes())?;
    put(
        &mut staged,
        &mut sums,
        DNSMASQ,
        0o644,
        dnsmasq_example().as_bytes(),
    )?;
    sums.sort();
    let text: String = sums.iter().map(|(n, h)| format!("{h}  {n}\n")).collect();
    let (mut f, _) = staged.create("SHA256SUMS", 0o644)?;
    f.write_all(text.as_bytes())?;
    staged.commit()?;
    Ok(hashes)
}

pub fn head_name(node: &str) -> String {
    format!("{node}.head.zst")
}
pub fn tail_name(node: &str) -> String {
    format!("{node}.tail.zst")
}
pub fn bmap_name(node: &str) -> String {
    format!("{node}.img.bmap")
}

struct HashingWriter<'a, W: Write> {
    inner: &'a mut W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The fleet's iPXE script. It compares the booting NIC's MAC (`${net0/mac}`, iPXE's
/// lower-case colon form) with every node's, loads the kernel with the node's name, the
/// tree's URL and the SHA-256 of every payload file as installer arguments, and stops
/// with the MAC and the known nodes for a machine that is not in the spec.
///
/// Without an initrd the node sections print that the installer is not part of this
/// build and stop before `boot`: a kernel without its installer must not start.
pub fn boot_script(
    cluster: &str,
    nodes: &[NodeHashes],
    base_url: Option<&str>,
    has_initrd: bool,
    kernel_cmdline: &[String],
) -> String {
    let base = base_url.unwrap_or(DEFAULT_BASE).trim_end_matches('/');
    let mut s = String::new();
    let _ = writeln!(s, "#!ipxe");
    let _ = writeln!(
        s,
        "# hcikit network install of cluster {cluster}. Generated by `hcikit build --pxe`;\n\
         # the SHA-256 of every payload file is pinned below, so edit the spec, not this file."
    );
    let _ = writeln!(s, "isset ${{hcikit-base}} || set hcikit-base {base}");
    let _ = writeln!(
        s,
        "echo hcikit: cluster {cluster}, this machine is ${{net0/mac}}"
    );
    for n in nodes {
        let _ = writeln!(s, "iseq ${{net0/mac}} {} && goto node-{} ||", n.mac, n.node);
    }
    let _ = writeln!(s, "goto unknown");
    for n in nodes {
        let _ = writeln!(s, "\n:node-{}", n.node);
        let _ = writeln!(s, "echo hcikit: installing node {}", n.node);
        let mut args = vec![
            format!("initrd={INITRD}"),
            "hcikit.install=1".to_string(),
            format!("hcikit.node={}", n.node),
            "hcikit.url=${hcikit-base}".to_string(),
            format!("hcikit.sha256.root={}", n.root),
            format!("hcikit.sha256.head={}", n.head),
            format!("hcikit.sha256.tail={}", n.tail),
            format!("hcikit.sha256.bmap={}", n.bmap),
            format!("hcikit.sha256.manifest={}", n.manifest),
            // iPXE's DHCP lease, so the installer needs no DHCP client of its own.
            "hcikit.mac=${net0/mac}".to_string(),
            "hcikit.ip=${net0/ip}".to_string(),
            "hcikit.netmask=${net0/netmask}".to_string(),
            "hcikit.gateway=${net0/gateway}".to_string(),
        ];
        args.extend(kernel_cmdline.iter().cloned());
        if has_initrd {
            let _ = writeln!(s, "kernel ${{hcikit-base}}/{KERNEL} {}", args.join(" "));
            let _ = writeln!(s, "initrd ${{hcikit-base}}/{INITRD}");
            let _ = writeln!(s, "boot");
        } else {
            let _ = writeln!(
                s,
                "echo hcikit: this build has no installer initrd ({INITRD}); nothing is installed.\n\
                 echo hcikit: installer arguments: {}\n\
                 prompt --timeout 600000 Press any key to leave the network boot ||\n\
                 exit 1",
                args.join(" ")
            );
        }
    }
    let _ = writeln!(s, "\n:unknown");
    let _ = writeln!(
        s,
        "echo hcikit: MAC ${{net0/mac}} is not a node of cluster {cluster}; nothing is installed."
    );
    // Tells `hcikit serve` too, so the fleet view shows the stranger.
    let _ = writeln!(s, "imgfetch ${{hcikit-base}}/unknown-mac/${{net0/mac}} ||");
    let known: Vec<String> = nodes
        .iter()
        .map(|n| format!("{} {}", n.node, n.mac))
        .collect();
    let _ = writeln!(s, "echo hcikit: known nodes: {}", known.join(", "));
    let _ = writeln!(
        s,
        "echo hcikit: add this MAC as nodes[].mac in the spec and rebuild with --pxe."
    );
    let _ = writeln!(
        s,
        "prompt --timeout 600000 Press any key to leave the network boot ||"
    );
    let _ = writeln!(s, "exit 1");
    s
}

/// dnsmasq beside an existing DHCP server (proxy-DHCP: dnsmasq hands out no addresses,
/// only boot information). Firmware PXE gets iPXE over TFTP; iPXE, which asks DHCP again,
/// is told apart by its user class and gets the script over HTTP, which breaks the loop.
/// UEFI HTTP boot clients get the iPXE binary by URL.
pub fn dnsmasq_example() -> String {
    "# hcikit network install: dnsmasq as proxy-DHCP beside the site's DHCP server.\n\
# Replace 192.0.2.0 (the site's subnet), 192.0.2.10 (this server) and the TFTP folder,\n\
# then run:  dnsmasq --conf-file=dnsmasq.conf.example --no-daemon\n\
# and, on the same server:  hcikit serve OUT/pxe --listen 192.0.2.10:8080\n\
\n\
# No DNS; answer only PXE clients, never hand out addresses.\n\
port=0\n\
dhcp-range=192.0.2.0,proxy\n\
log-dhcp\n\
\n\
# TFTP for the first stage: the firmware's PXE loads iPXE (ipxe.efi from Debian's\n\
# ipxe package, copied into tftp-root).\n\
enable-tftp\n\
tftp-root=/srv/tftp\n\
\n\
# iPXE asks DHCP again; its user class is \"iPXE\". Tag it so it gets the script\n\
# instead of iPXE once more (which would loop forever).\n\
dhcp-userclass=set:ipxe,iPXE\n\
\n\
# UEFI x86-64 PXE (client architecture 7 and 9) without iPXE: load iPXE by TFTP.\n\
dhcp-match=set:efi64,option:client-arch,7\n\
dhcp-match=set:efi64,option:client-arch,9\n\
pxe-service=tag:efi64,tag:!ipxe,X86-64_EFI,\"iPXE for hcikit\",ipxe.efi\n\
\n\
# iPXE (any firmware): the fleet's script over HTTP from hcikit serve.\n\
pxe-service=tag:ipxe,X86-64_EFI,\"hcikit install\",http://192.0.2.10:8080/boot.ipxe\n\
dhcp-boot=tag:ipxe,http://192.0.2.10:8080/boot.ipxe\n\
\n\
# UEFI HTTP boot (client architecture 16): the firmware fetches iPXE itself by URL, no\n\
# TFTP; it must answer with vendor class HTTPClient. Serve ipxe.efi from the tree's\n\
# folder too (copy it beside boot.ipxe).\n\
dhcp-match=set:efihttp,option:client-arch,16\n\
dhcp-option-force=tag:efihttp,60,HTTPClient\n\
dhcp-boot=tag:efihttp,tag:!ipxe,http://192.0.2.10:8080/ipxe.efi\n"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(node: &str, mac: &str) -> NodeHashes {
        NodeHashes {
            node: node.into(),
            mac: mac.into(),
            root: "a".repeat(64),
            head: "b".repeat(64),
            tail: "c".repeat(64),
            bmap: "d".repeat(64),
            manifest: "e".repeat(64),
        }
    }

    #[test]
    fn script_picks_by_mac_and_stops_for_others() {
        let nodes = [
            hashes("pve1", "52:54:00:00:00:01"),
            hashes("pve2", "52:54:00:00:00:02"),
        ];
        let s = boot_script("lab", &nodes, None, true, &["quiet".into()]);
        assert!(s.starts_with("#!ipxe\n"));
        assert!(s.contains("iseq ${net0/mac} 52:54:00:00:00:02 && goto node-pve2 ||\n"));
        assert!(s.contains(&format!("set hcikit-base {DEFAULT_BASE}\n")));
        let pve2 = s.split(":node-pve2\n").nth(1).unwrap();
        let kernel = pve2.lines().find(|l| l.starts_with("kernel ")).unwrap();
        for want in [
            "hcikit.node=pve2",
            &format!("hcikit.sha256.head={}", "b".repeat(64)),
            &format!("hcikit.sha256.root={}", "a".repeat(64)),
            " quiet",
        ] {
            assert!(kernel.contains(want), "{kernel} lacks {want}");
        }
        let unknown = s.split(":unknown\n").nth(1).unwrap();
        assert!(unknown.contains("is not a node of cluster lab"));
        assert!(unknown.contains("pve1 52:54:00:00:00:01, pve2 52:54:00:00:00:02"));
        assert!(unknown.trim_end().ends_with("exit 1"));
        // The unknown section is reached only when no MAC matched.
        let before = s.split(":node-pve1").next().unwrap();
        assert!(before.trim_end().ends_with("goto unknown"));
    }

    #[test]
    fn without_initrd_nothing_boots() {
        let s = boot_script(
            "lab",
            &[hashes("pve1", "52:54:00:00:00:01")],
            Some("http://10.0.0.5:8080/"),
            false,
            &[],
        );
        assert!(s.contains("set hcikit-base http://10.0.0.5:8080\n"));
        assert!(!s
            .lines()
            .any(|l| l.starts_with("kernel ") || l.starts_with("initrd ") || l == "boot"));
        assert!(s.contains("no installer initrd"));
    }

    #[test]
    fn dnsmasq_breaks_the_ipxe_loop() {
        let d = dnsmasq_example();
        assert!(d.contains("dhcp-range=192.0.2.0,proxy"));
        assert!(d.contains("dhcp-userclass=set:ipxe,iPXE"));
        assert!(d.contains("tag:!ipxe"));
        assert!(d.contains("60,HTTPClient"));
    }
}
