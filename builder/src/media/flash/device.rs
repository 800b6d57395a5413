//! The flash target: what it is (a whole disk, a partition, a regular file), how big, and
//! whether anything on it is in use. The parsers are pure; [`Sysfs`] reads a sysfs tree
//! under a root that tests can point at a fake one.

use crate::units::human_bytes;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A block device number (major, minor).
pub type DevNum = (u32, u32);

/// One line of `/proc/self/mountinfo` (proc(5)), reduced to what the safety checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// `st_dev` of the mounted filesystem (field 3).
    pub dev: DevNum,
    /// Where it is mounted (field 5), with `\040`-style escapes undone.
    pub mount_point: String,
    /// The mount source after the ` - ` separator, e.g. `/dev/sda1`.
    pub source: String,
}

/// Parses mountinfo text; lines that do not have the documented shape are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (head, tail) = line.split_once(" - ")?;
    let mut head = head.split(' ');
    let _mount_id = head.next()?;
    let _parent_id = head.next()?;
    let dev = parse_devnum(head.next()?)?;
    let _root = head.next()?;
    let mount_point = unescape_octal(head.next()?);
    let mut tail = tail.split(' ');
    let _fstype = tail.next()?;
    let source = unescape_octal(tail.next()?);
    Some(MountEntry {
        dev,
        mount_point,
        source,
    })
}

/// `"8:1"` → (8, 1).
pub fn parse_devnum(s: &str) -> Option<DevNum> {
    let (a, b) = s.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The kernel writes space, tab, newline and backslash in mount paths as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let d = &b[i + 1..i + 4];
            if d.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Device paths listed in `/proc/swaps` (first column, after the header line).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(unescape_octal)
        .collect()
}

/// A sysfs tree, normally `/sys`.
#[derive(Debug, Clone)]
pub struct Sysfs {
    pub root: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs {
            root: PathBuf::from("/sys"),
        }
    }
}

impl Sysfs {
    fn class(&self, name: &str) -> PathBuf {
        self.root.join("class/block").join(name)
    }

    /// The kernel name (`sda`, `nvme0n1p2`) of a device number.
    pub fn name_of(&self, dev: DevNum) -> Option<String> {
        let link = self.root.join(format!("dev/block/{}:{}", dev.0, dev.1));
        let target = std::fs::read_link(link).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }

    pub fn devnum(&self, name: &str) -> Option<DevNum> {
        parse_devnum(&std::fs::read_to_string(self.class(name).join("dev")).ok()?)
    }

    pub fn is_partition(&self, name: &str) -> bool {
        self.class(name).join("partition").exists()
    }

    /// The disk a partition belongs to: the parent folder of its sysfs device folder.
    pub fn parent_disk(&self, name: &str) -> Option<String> {
        let real = std::fs::canonicalize(self.class(name)).ok()?;
        Some(real.parent()?.file_name()?.to_string_lossy().into_owned())
    }

    /// Partitions of a disk: subfolders that have a `partition` file.
    pub fn partitions(&self, disk: &str) -> Vec<String> {
        self.list(&self.class(disk))
            .into_iter()
            .filter(|p| self.class(disk).join(p).join("partition").exists())
            .collect()
    }

    /// Devices stacked on this one (device-mapper, md RAID, bcache).
    pub fn holders(&self, name: &str) -> Vec<String> {
        self.list(&self.class(name).join("holders"))
    }

    fn list(&self, dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The device, its partitions, and everything stacked on any of them (transitively):
    /// if any of these is mounted or swapped on, the device is in use.
    pub fn in_use_set(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            todo.extend(self.partitions(&n));
            todo.extend(self.holders(&n));
        }
        seen
    }

    /// A human line about a disk: vendor, model and size from sysfs.
    pub fn describe(&self, name: &str) -> String {
        let read = |p: PathBuf| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let dev = self.class(name).join("device");
        let model = [read(dev.join("vendor")), read(dev.join("model"))]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let size = read(self.class(name).join("size"))
            .and_then(|s| s.parse::<u64>().ok())
            .map(|sectors| human_bytes(sectors * 512));
        let mut s = name.to_string();
        if !model.is_empty() {
            s.push_str(&format!(", {model}"));
        }
        if let Some(size) = size {
            s.push_str(&format!(", {size}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_fields_and_escapes() {
        let text = "\
36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw,errors=continue
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
garbage line
";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].dev, (98, 0));
        assert_eq!(m[0].mount_point, "/mnt/my disk");
        assert_eq!(m[0].source, "/dev/root");
        assert_eq!(m[1].source, "/dev/sda2");
    }

    #[test]
    fn swaps_lists_devices() {
        let text = "Filename\tType\tSize\tUsed\tPriority\n/dev/sdb2 partition 1048572 0 -2\n";
        assert_eq!(parse_swaps(text), vec!["/dev/sdb2"]);
    }

    /// A fake sysfs: sda with sda1 and sda2, sda2 held by dm-0.
    #[test]
    fn in_use_set_follows_partitions_and_holders() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let devices = root.join("devices/pci0/block");
        std::fs::create_dir_all(devices.join("sda/sda1")).unwrap();
        std::fs::create_dir_all(devices.join("sda/sda2/holders")).unwrap();
        std::fs::create_dir_all(root.join("devices/virtual/block/dm-0")).unwrap();
        std::fs::write(devices.join("sda/sda1/partition"), "1\n").unwrap();
        std::fs::write(devices.join("sda/sda2/partition"), "2\n").unwrap();
        std::fs::write(devices.join("sda/dev"), "8:0\n").unwrap();
        std::fs::create_dir_all(root.join("class/block")).unwrap();
        for (name, dir) in [
            ("sda", devices.join("sda")),
            ("sda1", devices.join("sda/sda1")),
            ("sda2", devices.join("sda/sda2")),
            ("dm-0", root.join("devices/virtual/block/dm-0")),
        ] {
            std::os::unix::fs::symlink(&dir, root.join("class/block").join(name)).unwrap();
        }
        std::os::unix::fs::symlink(
            root.join("devices/virtual/block/dm-0"),
            devices.join("sda/sda2/holders/dm-0"),
        )
        .unwrap();
        let s = Sysfs {
            root: root.to_path_buf(),
        };
        let set: Vec<_> = s.in_use_set("sda").into_iter().collect();
        assert_eq!(set, ["dm-0", "sda", "sda1", "sda2"]);
        assert!(s.is_partition("sda2") && !s.is_partition("sda"));
        assert_eq!(s.parent_disk("sda2").as_deref(), Some("sda"));
        assert_eq!(s.devnum("sda"), Some((8, 0)));
    }
}
