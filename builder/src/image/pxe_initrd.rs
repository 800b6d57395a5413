//! The network installer's initrd (`out/pxe/initrd.img`), made from the base's own files:
//! a small `/init`, the agent, the few programs the installer runs (sh, insmod, ip,
//! systemd-udevd/udevadm with the rules that make `/dev/disk/by-id` and the udev database,
//! efibootmgr), every shared library they need (resolved from the ELF `DT_NEEDED`
//! entries, the `RUNPATH` and the interpreter) and the NIC and disk drivers with their
//! `modules.dep` closure. The same base and agent always give the same bytes.

use super::rootfs::{Item, Kind};
use crate::media::initrd::{gzip, newc, Entry};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};

/// Programs of the base the initrd carries (their own paths; `/usr` merged or not).
pub const PROGRAMS: &[&str] = &[
    "usr/bin/sh",
    "usr/bin/kmod",
    "usr/sbin/insmod",
    "usr/sbin/ip",
    "usr/bin/mount",
    "usr/bin/udevadm",
    "usr/lib/systemd/systemd-udevd",
    "usr/lib/udev/ata_id",
    "usr/lib/udev/scsi_id",
    "usr/bin/efibootmgr",
    "usr/bin/sleep",
];

/// udev rules that name disks (`/dev/disk/by-id`, `by-partuuid`) and fill the database
/// the installer's disk probe reads.
pub const UDEV_RULES: &[&str] = &[
    "usr/lib/udev/rules.d/50-udev-default.rules",
    "usr/lib/udev/rules.d/60-block.rules",
    "usr/lib/udev/rules.d/60-persistent-storage.rules",
];

/// Drivers loaded at start: common server and mini-PC NICs, the disk controllers, and
/// efivarfs for the boot entry. Loading a driver for absent hardware is harmless.
pub const MODULES: &[&str] = &[
    "efivarfs",
    "virtio_net",
    "virtio_blk",
    "virtio_scsi",
    "e1000",
    "e1000e",
    "igb",
    "igc",
    "ixgbe",
    "i40e",
    "r8169",
    "tg3",
    "bnx2x",
    "bnxt_en",
    "nvme",
    "ahci",
    "sd_mod",
    "usb-storage",
    "uas",
    "xhci_pci",
];

/// Where the agent lives in the initrd.
pub const AGENT: &str = "usr/sbin/hcikit-firstboot";

/// The ELF facts the initrd needs: the program interpreter, the libraries by soname and
/// the extra search folders.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ElfDeps {
    pub interp: Option<String>,
    pub needed: Vec<String>,
    pub runpath: Vec<String>,
}

/// Reads `PT_INTERP`, `DT_NEEDED` and `DT_RUNPATH`/`DT_RPATH` of a 64-bit ELF file.
/// Anything that is not a 64-bit ELF (a script, a data file) has no dependencies.
pub fn elf_deps(data: &[u8]) -> Result<ElfDeps> {
    use object::elf;
    use object::read::elf::{Dyn, FileHeader, ProgramHeader};
    if data.len() < 5 || &data[..4] != b"\x7fELF" || data[4] != elf::ELFCLASS64 {
        return Ok(ElfDeps::default());
    }
    let h = elf::FileHeader64::<object::Endianness>::parse(data).context("reading ELF header")?;
    let e = h.endian().context("ELF byte order")?;
    let mut out = ElfDeps::default();
    for ph in h.program_headers(e, data).context("ELF program headers")? {
        if ph.p_type(e) == elf::PT_INTERP {
            if let Some(i) = ph.interpreter(e, data).context("ELF interpreter")? {
                out.interp = Some(String::from_utf8_lossy(i).into_owned());
            }
        }
    }
    let sections = h.sections(e, data).context("ELF sections")?;
    if let Some((dynamic, link)) = sections.dynamic(e, data).context("ELF dynamic section")? {
        let strings = sections.strings(e, data, link).context("ELF strings")?;
        for d in dynamic {
            let tag = d.tag(e);
            let text = || -> Result<String> {
                Ok(String::from_utf8_lossy(
                    d.string(e, strings)
                        .map_err(|_| anyhow::anyhow!("bad ELF string"))?,
                )
                .into_owned())
            };
            match tag {
                elf::DT_NEEDED => out.needed.push(text()?),
                elf::DT_RUNPATH | elf::DT_RPATH => {
                    out.runpath.extend(text()?.split(':').map(str::to_string))
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Library folders searched after `RUNPATH`, like the loader's defaults on Debian.
const LIB_DIRS: &[&str] = &[
    "usr/lib/x86_64-linux-gnu",
    "lib/x86_64-linux-gnu",
    "usr/lib64",
    "lib64",
    "usr/lib",
    "lib",
];

/// The base's tree by path, with symlinks followed the way the kernel does.
pub struct Tree<'a> {
    items: BTreeMap<&'a str, &'a Item>,
}

/// A path resolved in the tree: the regular file's real path, and every symlink passed
/// on the way (`(where, target)`), which the initrd needs too.
#[derive(Debug, PartialEq, Eq)]
pub struct Resolved {
    pub path: String,
    pub links: Vec<(String, String)>,
}

impl<'a> Tree<'a> {
    pub fn new(items: &'a [Item]) -> Tree<'a> {
        Tree {
            items: items.iter().map(|i| (i.path.as_str(), i)).collect(),
        }
    }

    pub fn item(&self, path: &str) -> Option<&'a Item> {
        self.items.get(path).copied()
    }

    /// Follows symlinks in every component of `path` (relative to `/`).
    pub fn resolve(&self, path: &str) -> Option<Resolved> {
        let mut links = Vec::new();
        let mut todo: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .rev()
            .map(str::to_string)
            .collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            done.push(c);
            let here = done.join("/");
            // A folder the archive does not list is a plain folder; only the final path
            // must exist.
            if let Some(Kind::Symlink(target)) = self.item(&here).map(|i| &i.kind) {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                links.push((here.clone(), target.clone()));
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                todo.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty() && *c != ".")
                        .rev()
                        .map(str::to_string),
                );
            }
        }
        let path = done.join("/");
        match self.item(&path)?.kind {
            Kind::File | Kind::Hardlink(_) => Some(Resolved { path, links }),
            _ => None,
        }
    }

    /// A library by soname: `RUNPATH` folders first (with `$ORIGIN` replaced), then the
    /// default folders.
    pub fn library(&self, soname: &str, runpath: &[String], origin: &str) -> Option<Resolved> {
        runpath
            .iter()
            .map(|d| d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin))
            .chain(LIB_DIRS.iter().map(|d| d.to_string()))
            .find_map(|d| self.resolve(&format!("{}/{soname}", d.trim_matches('/'))))
    }
}

/// The modules `wanted` names (`-` and `_` alike) and everything they need, from
/// `modules.dep`, in an order that loads every dependency before its user. Names the
/// kernel builds in or does not have are skipped.
pub fn module_closure(modules_dep: &str, wanted: &[&str]) -> Vec<String> {
    let norm = |s: &str| s.replace('-', "_");
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for line in modules_dep.lines() {
        let Some((m, rest)) = line.split_once(':') else {
            continue;
        };
        let name = m.rsplit('/').next().unwrap_or(m);
        let name = name.split(".ko").next().unwrap_or(name);
        by_name.insert(norm(name), m.to_string());
        deps.insert(
            m.to_string(),
            rest.split_whitespace().map(str::to_string).collect(),
        );
    }
    fn visit(
        m: &str,
        deps: &BTreeMap<String, Vec<String>>,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if !seen.insert(m.to_string()) {
            return;
        }
        for d in deps.get(m).into_iter().flatten() {
            visit(d, deps, seen, out);
        }
        out.push(m.to_string());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for w in wanted {
        if let Some(m) = by_name.get(&norm(w)) {
            visit(m, &deps, &mut seen, &mut out);
        }
    }
    out
}

/// The initrd's `/init`: mounts the kernel file systems, loads the drivers, starts udev
/// and waits for the disks and NICs, then runs the installer. The installer powers the
/// machine off itself; should it return, the machine halts here instead of booting the
/// network installer again.
pub fn init_script(kver: &str, modules: &[String]) -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         # hcikit network installer (generated by `hcikit build --pxe`).\n\
         export PATH=/usr/sbin:/usr/bin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n\
         mount -t tmpfs -o mode=0755 tmpfs /run\n\
         mkdir -p /tmp /run/udev\n",
    );
    for m in modules {
        s.push_str(&format!("insmod /usr/lib/modules/{kver}/{m} 2>/dev/null\n"));
    }
    s.push_str(
        "mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null\n\
         /usr/lib/systemd/systemd-udevd --daemon --resolve-names=never\n\
         udevadm trigger --type=subsystems --action=add\n\
         udevadm trigger --type=devices --action=add\n\
         udevadm settle --timeout=60\n\
         /usr/sbin/hcikit-firstboot install --net\n\
         echo \"hcikit-install: the installer stopped (exit $?); the machine stays halted so it does not loop. Power it off.\"\n\
         while :; do sleep 3600; done\n",
    );
    s
}

/// The initrd's members. `read` gives a base file's bytes.
pub fn entries(
    items: &[Item],
    read: &dyn Fn(&Item) -> Result<Vec<u8>>,
    agent: &[u8],
    kver: &str,
) -> Result<Vec<Entry>> {
    let tree = Tree::new(items);
    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    let add_links = |links: &[(String, String)], files: &mut BTreeMap<String, Entry>| {
        for (at, to) in links {
            files
                .entry(at.clone())
                .or_insert_with(|| Entry::symlink(at, to));
        }
    };
    // Programs and libraries, breadth first over DT_NEEDED.
    let mut queue: Vec<(String, Vec<u8>)> = vec![(AGENT.to_string(), agent.to_vec())];
    files.insert(AGENT.into(), Entry::file(AGENT, 0o755, agent.to_vec()));
    for p in PROGRAMS {
        let r = tree
            .resolve(p)
            .with_context(|| format!("the base has no /{p}, which the network installer runs"))?;
        add_links(&r.links, &mut files);
        if !files.contains_key(&r.path) {
            let item = tree.item(&r.path).expect("resolved");
            let bytes = read(item)?;
            files.insert(r.path.clone(), Entry::file(&r.path, 0o755, bytes.clone()));
            queue.push((r.path, bytes));
        }
    }
    while let Some((path, bytes)) = queue.pop() {
        let d = elf_deps(&bytes).with_context(|| format!("reading /{path}"))?;
        let origin = path.rsplit_once('/').map_or("", |p| p.0).to_string();
        let mut wanted: Vec<Resolved> = Vec::new();
        if let Some(i) = &d.interp {
            wanted.push(tree.resolve(i).with_context(|| {
                format!("/{path} needs the loader {i}, which the base does not have")
            })?);
        }
        for n in &d.needed {
            wanted.push(
                tree.library(n, &d.runpath, &origin)
                    .with_context(|| format!("/{path} needs {n}, which the base does not have"))?,
            );
        }
        for r in wanted {
            add_links(&r.links, &mut files);
            if files.contains_key(&r.path) {
                continue;
            }
            let item = tree.item(&r.path).expect("resolved");
            let bytes = read(item)?;
            files.insert(r.path.clone(), Entry::file(&r.path, 0o755, bytes.clone()));
            queue.push((r.path, bytes));
        }
    }
    for r in UDEV_RULES {
        let item = tree
            .item(r)
            .filter(|i| i.kind == Kind::File)
            .with_context(|| format!("the base has no /{r}"))?;
        files.insert(r.to_string(), Entry::file(r, 0o644, read(item)?));
    }
    let moddir = format!("usr/lib/modules/{kver}");
    let dep_path = format!("{moddir}/modules.dep");
    let dep = tree
        .resolve(&dep_path)
        .with_context(|| format!("the base has no /{dep_path} (run depmod in the base)"))?;
    let dep_text = String::from_utf8(read(tree.item(&dep.path).expect("resolved"))?)
        .context("modules.dep is not text")?;
    let modules = module_closure(&dep_text, MODULES);
    for m in &modules {
        let p = format!("{moddir}/{m}");
        let r = tree
            .resolve(&p)
            .with_context(|| format!("modules.dep names /{p}, which the base does not have"))?;
        files.insert(
            p.clone(),
            Entry::file(&p, 0o644, read(tree.item(&r.path).expect("resolved"))?),
        );
    }
    files.insert(
        "init".into(),
        Entry::file("init", 0o755, init_script(kver, &modules).into_bytes()),
    );
    for d in ["proc", "sys", "dev", "run", "tmp"] {
        files.insert(
            d.into(),
            Entry {
                path: d.into(),
                mode: crate::media::initrd::S_IFDIR | 0o755,
                data: Vec::new(),
            },
        );
    }
    // Folders that are symlinks in the base (`/lib` → `usr/lib`) come along as links.
    for top in ["bin", "sbin", "lib", "lib64"] {
        if let Some(Kind::Symlink(t)) = tree.item(top).map(|i| &i.kind) {
            files.insert(top.into(), Entry::symlink(top, t));
        }
    }
    Ok(files.into_values().collect())
}

/// The gzip-compressed newc archive of [`entries`].
pub fn build(
    items: &[Item],
    read: &dyn Fn(&Item) -> Result<Vec<u8>>,
    agent: &[u8],
    kver: &str,
    epoch: u64,
) -> Result<Vec<u8>> {
    let e = entries(items, read, agent, kver)?;
    if e.is_empty() {
        bail!("empty initrd");
    }
    gzip(&newc(&e, epoch as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::rootfs::Data;

    fn tree_items() -> Vec<Item> {
        vec![
            Item::symlink("lib", "usr/lib"),
            Item::dir("usr", 0o755),
            Item::dir("usr/lib", 0o755),
            Item::dir("usr/lib/x86_64-linux-gnu", 0o755),
            Item::file("usr/lib/x86_64-linux-gnu/libc.so.6", 0o755, Data::None),
            Item::symlink("usr/lib/x86_64-linux-gnu/libz.so.1", "libz.so.1.3"),
            Item::file("usr/lib/x86_64-linux-gnu/libz.so.1.3", 0o644, Data::None),
            Item::dir("usr/bin", 0o755),
            Item::symlink("usr/bin/sh", "dash"),
            Item::file("usr/bin/dash", 0o755, Data::None),
            Item::symlink("usr/bin/udevadm", "../lib/systemd/systemd-udevd"),
            Item::dir("usr/lib/systemd", 0o755),
            Item::file("usr/lib/systemd/systemd-udevd", 0o755, Data::None),
        ]
    }

    #[test]
    fn symlinks_are_followed_in_every_component() {
        let items = tree_items();
        let t = Tree::new(&items);
        assert_eq!(
            t.resolve("usr/bin/sh").unwrap(),
            Resolved {
                path: "usr/bin/dash".into(),
                links: vec![("usr/bin/sh".into(), "dash".into())]
            }
        );
        let r = t.resolve("/lib/x86_64-linux-gnu/libz.so.1").unwrap();
        assert_eq!(r.path, "usr/lib/x86_64-linux-gnu/libz.so.1.3");
        assert_eq!(r.links[0], ("lib".into(), "usr/lib".into()));
        assert_eq!(
            t.resolve("usr/bin/udevadm").unwrap().path,
            "usr/lib/systemd/systemd-udevd"
        );
        assert!(t.resolve("usr/bin/missing").is_none());
        assert!(t.resolve("usr/bin").is_none(), "a folder is not a file");
        assert_eq!(
            t.library("libc.so.6", &[], "usr/bin").unwrap().path,
            "usr/lib/x86_64-linux-gnu/libc.so.6"
        );
    }

    #[test]
    fn symlink_loops_end() {
        let items = vec![Item::symlink("a", "b"), Item::symlink("b", "a")];
        assert!(Tree::new(&items).resolve("a").is_none());
    }

    #[test]
    fn module_closure_loads_dependencies_first() {
        let dep = "kernel/drivers/nvme/host/nvme.ko.xz: kernel/drivers/nvme/host/nvme-core.ko.xz kernel/drivers/nvme/common/nvme-auth.ko.xz\n\
                   kernel/drivers/nvme/host/nvme-core.ko.xz: kernel/drivers/nvme/common/nvme-auth.ko.xz\n\
                   kernel/drivers/nvme/common/nvme-auth.ko.xz:\n\
                   kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz\n\
                   kernel/drivers/net/net_failover.ko.xz:\n";
        let got = module_closure(dep, &["nvme", "virtio-net", "not_here", "nvme_core"]);
        assert_eq!(
            got,
            [
                "kernel/drivers/nvme/common/nvme-auth.ko.xz",
                "kernel/drivers/nvme/host/nvme-core.ko.xz",
                "kernel/drivers/nvme/host/nvme.ko.xz",
                "kernel/drivers/net/net_failover.ko.xz",
                "kernel/drivers/net/virtio_net.ko.xz",
            ]
        );
    }

    #[test]
    fn elf_deps_of_a_real_program() {
        // The test binary itself is a dynamically linked 64-bit ELF on the build machine.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let d = elf_deps(&me).unwrap();
        assert!(d.needed.iter().any(|n| n.starts_with("libc.so")), "{d:?}");
        assert!(
            d.interp.as_deref().unwrap_or("").contains("ld-linux"),
            "{d:?}"
        );
        assert_eq!(elf_deps(b"#!/bin/sh\n").unwrap(), ElfDeps::default());
    }

    #[test]
    fn init_loads_modules_and_runs_the_installer() {
        let s = init_script("6.1.0-1-amd64", &["kernel/a.ko.xz".into()]);
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("insmod /usr/lib/modules/6.1.0-1-amd64/kernel/a.ko.xz"));
        let run = s.find("hcikit-firstboot install --net").unwrap();
        assert!(s.find("udevadm settle").unwrap() < run);
        assert!(!s.contains("reboot"), "a failed install must not loop");
    }

    #[test]
    fn entries_carry_programs_rules_modules_and_init() {
        let kver = "6.1.0-1-amd64";
        let md = format!("usr/lib/modules/{kver}");
        let mut items = vec![Item::symlink("lib", "usr/lib")];
        for p in PROGRAMS.iter().chain(UDEV_RULES) {
            items.push(Item::file(
                p,
                0o755,
                Data::Bytes(format!("#!{p}").into_bytes()),
            ));
        }
        items.push(Item::file(
            &format!("{md}/modules.dep"),
            0o644,
            Data::Bytes(
                b"kernel/nvme.ko.xz: kernel/nvme-core.ko.xz\nkernel/nvme-core.ko.xz:\n".to_vec(),
            ),
        ));
        for m in ["nvme", "nvme-core"] {
            items.push(Item::file(
                &format!("{md}/kernel/{m}.ko.xz"),
                0o644,
                Data::Bytes(m.as_bytes().to_vec()),
            ));
        }
        let read = |i: &Item| -> Result<Vec<u8>> {
            match &i.data {
                Data::Bytes(b) => Ok(b.clone()),
                _ => Ok(Vec::new()),
            }
        };
        let e = entries(&items, &read, b"agent", kver).unwrap();
        let by: BTreeMap<&str, &Entry> = e.iter().map(|e| (e.path.as_str(), e)).collect();
        assert_eq!(by[AGENT].data, b"agent");
        for p in PROGRAMS.iter().chain(UDEV_RULES) {
            assert!(by.contains_key(p), "{p} missing");
        }
        assert_eq!(by["lib"].data, b"usr/lib", "folder links come along");
        let init = String::from_utf8(by["init"].data.clone()).unwrap();
        let core = init.find("kernel/nvme-core.ko.xz").unwrap();
        assert!(core < init.find("kernel/nvme.ko.xz").unwrap());
        assert!(by.contains_key(format!("{md}/kernel/nvme.ko.xz").as_str()));
        // Same inputs, same archive.
        let a = build(&items, &read, b"agent", kver, 7).unwrap();
        assert_eq!(a, build(&items, &read, b"agent", kver, 7).unwrap());
        // A base without one of the programs is refused, naming it.
        items.retain(|i| i.path != "usr/bin/efibootmgr");
        let err = entries(&items, &read, b"agent", kver).unwrap_err();
        assert!(
            format!("{err:#}").contains("/usr/bin/efibootmgr"),
            "{err:#}"
        );
    }
}
