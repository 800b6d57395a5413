//! Proves the VM harness on the real Debian base before hcikit images exist: three guests
//! booted directly from the base's kernel, two virtio NICs each on two loopback-only
//! switches; checks in-guest NIC names and that every guest reaches every other on both.
//! Slow tier: `cargo test -p hcikit-tests --test vm_harness -- --ignored --nocapture`.

#[path = "../vm/mod.rs"]
mod vm;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use vm::lab::{self, GuestSpec, Lab};
use vm::qemu::{self, Boot};

#[test]
#[ignore = "slow: boots three QEMU guests"]
fn three_guests_see_ens18_ens19_and_reach_each_other() {
    let t0 = Instant::now();
    let run = vm::run_dir("harness");
    println!("logs: {}", run.display());
    let base = hcikit::image::base::ensure_base(&vm::debian_plan(), &vm::vm_cache_dir()).unwrap();
    let (kernel, initrd) = lab::kernel_from_base(&base, &run).unwrap();

    let t = Instant::now();
    let root = run.join("root.img");
    qemu::tool(
        "mke2fs",
        &[
            "-q",
            "-t",
            "ext4",
            "-L",
            "root",
            "-d",
            &base.display().to_string(),
            &root.display().to_string(),
            "2G",
        ],
        "e2fsprogs (>= 1.47.1, for -d with a tar)",
    )
    .unwrap();
    lab::inject_checker(&root.display().to_string(), &run).unwrap();
    println!("root file system from the base: {}", lab::secs(t));

    let net = |n: usize, g: usize| format!("10.99.{}.{}", n + 1, 11 + g);
    let mut specs = Vec::new();
    for g in 0..3 {
        let name = format!("vm{}", g + 1);
        let disk = run.join(format!("{name}.img"));
        lab::sparse_copy(&root, &disk).unwrap();
        let disks = lab::guest_disks(disk, &run, &name, "1G").unwrap();
        let peers = |n: usize| {
            (0..3)
                .filter(|&o| o != g)
                .map(|o| net(n, o))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let env = format!(
            "MODE=proof\nNODE={name}\nNICS=\"ens18 ens19\"\n\
             ADDRS_0={}/24\nADDRS_1={}/24\nPEERS_0=\"{}\"\nPEERS_1=\"{}\"\n\
             DISK_SERIALS=\"{} {}\"\n",
            net(0, g),
            net(1, g),
            peers(0),
            peers(1),
            lab::CLEAN_SERIAL,
            lab::SIGNED_SERIAL,
        );
        specs.push(GuestSpec {
            name,
            boot: Boot::Kernel {
                kernel: kernel.clone(),
                initrd: initrd.clone(),
                append: "root=LABEL=root rw console=ttyS0,115200 panic=-1".into(),
            },
            disks,
            install_disks: vec![],
            macs: vec![
                format!("52:54:00:99:01:{:02x}", 0x11 + g),
                format!("52:54:00:99:02:{:02x}", 0x11 + g),
            ],
            checker_env: env,
        });
    }
    let mut lab = Lab::start(&run, 2, specs).unwrap();

    let mut boot = BTreeMap::new();
    let mut done = BTreeMap::new();
    for g in 0..3 {
        let name = lab.guests[g].config.name.clone();
        let (_, d) = lab
            .wait(g, Duration::from_secs(300), |l| {
                l.starts_with("HCIKIT boot ").then_some(())
            })
            .unwrap();
        boot.insert(name.clone(), d);
        let (_, d) = lab
            .wait(g, Duration::from_secs(300), |l| {
                (l.starts_with("HCIKIT done") || l.starts_with("HCIKIT fail")).then_some(())
            })
            .unwrap();
        done.insert(name, d);
    }
    let mut failures = Vec::new();
    for g in 0..3 {
        let lines = lab.lines(g);
        let name = &lab.guests[g].config.name;
        println!("--- {name}\n{}", lines.join("\n"));
        for (n, nic) in ["ens18", "ens19"].iter().enumerate() {
            let want = format!("nic {nic} mac=52:54:00:99:0{}:{:02x}", n + 1, 0x11 + g);
            if !lines.contains(&want) {
                failures.push(format!("{name}: no line {want:?}"));
            }
        }
        for l in &lines {
            if l.starts_with("fail") {
                failures.push(format!("{name}: {l}"));
            }
        }
        let pings = lines
            .iter()
            .filter(|l| l.starts_with("ping ") && l.ends_with(" ok"));
        if pings.count() != 4 {
            failures.push(format!("{name}: expected 4 successful pings"));
        }
        for (serial, fs) in [(lab::CLEAN_SERIAL, "none"), (lab::SIGNED_SERIAL, "ext4")] {
            let ok = lines.iter().any(|l| {
                l.starts_with(&format!("disk {serial} dev=/dev/sd"))
                    && l.ends_with(&format!(" type={fs}"))
            });
            if !ok {
                failures.push(format!("{name}: disk {serial} should be type={fs}"));
            }
        }
    }
    lab.shutdown();
    println!("{}", lab::timings("checker started (boot)", &boot));
    println!("{}", lab::timings("all pings answered", &done));
    println!("whole run: {}", lab::secs(t0));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    vm::remove_disks(&run);
}
