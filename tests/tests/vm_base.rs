//! Builds the real default Debian base with mmdebstrap and checks what is in it.
//! Slow tier (a minute or more, needs the host's apt archive): run with
//! `cargo test -p hcikit-tests --test vm_base -- --ignored --nocapture`.

#[path = "../vm/mod.rs"]
mod vm;

use std::time::Instant;
use vm::{base_tar_listing, vm_cache_dir};

#[test]
#[ignore = "slow: builds a real Debian base with mmdebstrap"]
fn debian_base_builds_and_is_cached() {
    let plan = vm::debian_plan();
    let cache = vm_cache_dir();
    let t = Instant::now();
    let tar = hcikit::image::base::ensure_base(&plan, &cache).expect("building the debian base");
    let first = t.elapsed();
    let size = std::fs::metadata(&tar).unwrap().len();
    println!(
        "base: {} ({:.0} MB) in {:.1} s",
        tar.display(),
        size as f64 / 1e6,
        first.as_secs_f64()
    );

    let t = Instant::now();
    assert_eq!(
        hcikit::image::base::ensure_base(&plan, &cache).unwrap(),
        tar
    );
    assert!(
        t.elapsed().as_secs() < 5,
        "second call did not reuse the cache"
    );

    let entries = base_tar_listing(&tar);
    let find = |p: &str| entries.iter().find(|e| e.path == p);
    let kernel = entries
        .iter()
        .find(|e| e.path.starts_with("boot/vmlinuz-"))
        .expect("kernel in /boot");
    let initrd = entries
        .iter()
        .find(|e| e.path.starts_with("boot/initrd.img-"))
        .expect("initrd in /boot");
    println!(
        "kernel {} ({} B), initrd {} ({} B)",
        kernel.path, kernel.size, initrd.path, initrd.size
    );
    assert!(
        initrd.size < 15_000_000,
        "initrd too big: {} B",
        initrd.size
    );
    assert!(find("usr/lib/systemd/boot/efi/systemd-bootx64.efi").is_some());
    assert!(find("usr/sbin/corosync").is_some());
    assert!(find("usr/sbin/ifup").is_some());
    assert!(find("etc/systemd/system-preset/10-hcikit.preset").is_some());
    assert!(find("etc/systemd/system/networking.service.d/hcikit.conf").is_some());
    assert!(
        find("etc/systemd/system/multi-user.target.wants/corosync.service").is_none(),
        "corosync enabled in the base"
    );
    assert!(
        !entries
            .iter()
            .any(|e| e.path.starts_with("etc/ssh/ssh_host_")),
        "SSH host keys baked into the base"
    );
    assert!(find("etc/hostname").is_none());
    // The sources under Debian's own name (no build-run file name), for trixie.
    let sources: Vec<&str> = entries
        .iter()
        .map(|e| e.path.as_str())
        .filter(|p| p.starts_with("etc/apt/sources.list.d/") && p.len() > 23)
        .collect();
    assert_eq!(sources, ["etc/apt/sources.list.d/debian.sources"]);
    assert!(
        entries
            .iter()
            .any(|e| e.path.starts_with("boot/vmlinuz-") && e.path.contains("deb13")),
        "not a trixie kernel"
    );
    assert_eq!(find("etc/machine-id").map(|e| e.size), Some(0));
    assert!(
        !entries
            .iter()
            .any(|e| e.path.starts_with("usr/share/man/man")),
        "man pages not filtered"
    );
}
