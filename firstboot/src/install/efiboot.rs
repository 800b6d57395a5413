//! The UEFI boot entry of the installed disk, through `efibootmgr`: one entry per node
//! (older entries with the same label are removed first), first in `BootOrder`, and
//! `BootNext` so the very next boot takes the installed disk even if the firmware would
//! prefer the stick.

use crate::cmd;
use anyhow::{bail, Context, Result};
use std::process::Command;

/// systemd-boot as the removable-media default, present on every hcikit ESP.
pub const LOADER: &str = r"\EFI\BOOT\BOOTX64.EFI";

/// The entry label for a node.
pub fn label(cluster: &str, node: &str) -> String {
    format!("hcikit {cluster} {node}")
}

/// `BootXXXX` entries of `efibootmgr` output as (number, label). Pure.
pub fn parse_entries(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Boot")?;
            let (num, rest) = rest.split_at_checked(4)?;
            if !num.chars().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            // `Boot0003* label<TAB>device path` (the path only in newer versions or -v).
            let rest = rest.trim_start_matches('*').trim_start();
            let label = rest.split('\t').next().unwrap_or("").trim_end();
            Some((num.to_string(), label.to_string()))
        })
        .collect()
}

/// `BootOrder` of `efibootmgr` output. Pure.
pub fn parse_order(out: &str) -> Vec<String> {
    out.lines()
        .find_map(|l| l.strip_prefix("BootOrder:"))
        .map(|s| {
            s.trim()
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Creates the entry for partition `part` of `disk` and makes it `BootNext`; returns its
/// number. Never touches other entries than those carrying `label`.
pub fn set_boot_entry(disk: &str, part: u32, label: &str) -> Result<String> {
    let hint = Some("the efibootmgr package");
    let list = cmd::run_stdout(&mut Command::new("efibootmgr"), hint)?;
    for (num, l) in parse_entries(&list) {
        if l == label {
            cmd::run(
                Command::new("efibootmgr").args(["-q", "-b", &num, "-B"]),
                hint,
            )
            .with_context(|| format!("removing the old boot entry {num} ({label})"))?;
        }
    }
    let out = cmd::run_stdout(
        Command::new("efibootmgr").args([
            "-c",
            "-d",
            disk,
            "-p",
            &part.to_string(),
            "-L",
            label,
            "-l",
            LOADER,
        ]),
        hint,
    )
    .context("creating the UEFI boot entry")?;
    let Some((num, _)) = parse_entries(&out).into_iter().find(|(_, l)| l == label) else {
        bail!("efibootmgr created no entry labelled {label:?}");
    };
    cmd::run(Command::new("efibootmgr").args(["-q", "-n", &num]), hint)
        .context("setting BootNext")?;
    let order = parse_order(&cmd::run_stdout(&mut Command::new("efibootmgr"), hint)?);
    if order.first() != Some(&num) {
        bail!(
            "boot entry {num} is not first in BootOrder ({})",
            order.join(",")
        );
    }
    Ok(num)
}

/// The number of an existing entry with this label, if any (for "already installed").
pub fn find_entry(label: &str) -> Option<String> {
    let list = cmd::run_stdout(&mut Command::new("efibootmgr"), None).ok()?;
    parse_entries(&list)
        .into_iter()
        .find(|(_, l)| l == label)
        .map(|(n, _)| n)
}

/// Sets `BootNext` to an existing entry.
pub fn boot_next(num: &str) -> Result<()> {
    cmd::run(
        Command::new("efibootmgr").args(["-q", "-n", num]),
        Some("the efibootmgr package"),
    )
    .map(|_| ())
    .context("setting BootNext")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shape of efibootmgr 17 (Debian bookworm) and 18 (trixie, device path after a tab).
    const OUT17: &str = "BootCurrent: 0001\nTimeout: 0 seconds\nBootOrder: 0003,0001,0000\nBoot0000* UiApp\nBoot0001* UEFI QEMU QEMU USB HARDDRIVE 1-0000:00:04.0-1\nBoot0003* hcikit minipc pve1\n";
    const OUT18: &str = "BootCurrent: 0001\nBootOrder: 0004,0001\nBoot0001* UEFI QEMU USB\tPciRoot(0x0)/Pci(0x4,0x0)/USB(0,0)\nBoot0004* hcikit minipc pve2\tHD(1,GPT,5f0a…,0x800,0x100000)/File(\\EFI\\BOOT\\BOOTX64.EFI)\n";

    #[test]
    fn entries_and_order_parse() {
        assert_eq!(
            parse_entries(OUT17),
            [
                ("0000".to_string(), "UiApp".to_string()),
                (
                    "0001".into(),
                    "UEFI QEMU QEMU USB HARDDRIVE 1-0000:00:04.0-1".into()
                ),
                ("0003".into(), "hcikit minipc pve1".into())
            ]
        );
        assert_eq!(parse_order(OUT17), ["0003", "0001", "0000"]);
        assert_eq!(
            parse_entries(OUT18)[1],
            ("0004".to_string(), label("minipc", "pve2"))
        );
        assert_eq!(parse_order(OUT18), ["0004", "0001"]);
        assert!(parse_entries("BootCurrent: 0001\nBootNext: 0003\n").is_empty());
    }
}
