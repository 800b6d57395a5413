//! The simulated tools, driven directly, behave like the Proxmox commands they stand for
//! (sources named in `sim/src/flags.rs` and `sim/src/world/`).

use hcikit_firstboot::example;
use hcikit_sim::{Latencies, World};

fn argv(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_string).collect()
}

struct W(World);

impl W {
    /// The lab; the joiners' ssh points at the bootstrap key, as the agent arranges.
    fn new() -> W {
        let mut w = W(World::new(&example::lab_plan(), Latencies::default(), 1));
        let block = hcikit_firstboot::decide::ssh_block("10.2.21.66");
        for i in [1, 2] {
            w.0.write_file(i, "/root/.ssh/config", block.as_bytes())
                .unwrap();
        }
        w
    }
    /// Runs on node `i` at the current time and moves the clock past the command.
    fn run(&mut self, i: usize, cmd: &str) -> hcikit_firstboot::host::Output {
        self.run_in(i, cmd, None)
    }
    fn run_in(
        &mut self,
        i: usize,
        cmd: &str,
        stdin: Option<&[u8]>,
    ) -> hcikit_firstboot::host::Output {
        let r = self.0.command(i, &argv(cmd), stdin);
        if r.latency_ms < u64::MAX / 8 {
            self.0.now += r.latency_ms;
        }
        r.out
    }
    fn at(&mut self, ms: u64) {
        self.0.now = self.0.now.max(ms);
    }
}

#[test]
fn a_join_makes_the_founder_inquorate_until_the_joiner_is_up() {
    let mut w = W::new();
    let o = w.run(
        0,
        "pvecm create pvelab --link0 10.2.21.66 --link1 10.2.22.66",
    );
    assert_eq!(o.code, 0);
    assert!(w.0.quorate());
    let start = w.0.now;
    // The join's effects are timed: sample the founder's quorum during it.
    let r = w.0.command(
        1,
        &argv("pvecm add 10.2.21.66 --use_ssh 1 --link0 10.2.21.67 --link1 10.2.22.67"),
        None,
    );
    assert_eq!(r.out.code, 0);
    w.at(start + 5_000);
    assert!(
        !w.0.quorate(),
        "1→2 join: inquorate until the joiner's corosync is up"
    );
    // A parallel join now is refused inside the task, and still exits 0.
    let o = w.run(
        2,
        "pvecm add 10.2.21.66 --use_ssh 1 --link0 10.2.21.68 --link1 10.2.22.68",
    );
    assert_eq!(o.code, 0);
    assert!(
        o.stderr.contains("cluster not ready - no quorum?"),
        "{}",
        o.stderr
    );
    w.at(start + r.latency_ms);
    assert!(w.0.quorate());
}

#[test]
fn documented_failures_and_lying_exit_codes() {
    let mut w = W::new();
    // Password mode without a password: exit 0 (lae#29).
    let o = w.run(
        1,
        "pvecm add 10.2.21.66 --link0 10.2.21.67 --link1 10.2.22.67",
    );
    assert_eq!(o.code, 0);
    assert!(o.stderr.contains("EOF while reading password"));
    // Links must be local to the joiner.
    let o = w.run(1, "pvecm add 10.2.21.66 --use_ssh 1 --link0 10.2.21.99");
    assert_ne!(o.code, 0);
    assert!(o
        .stderr
        .contains("link0: cannot use IP '10.2.21.99', not found on local node!"));
    w.run(
        0,
        "pvecm create pvelab --link0 10.2.21.66 --link1 10.2.22.66",
    );
    // A joiner holding a corosync key is refused before anything happens.
    w.0.write_file(2, "/etc/corosync/authkey", b"k").unwrap();
    let o = w.run(
        2,
        "pvecm add 10.2.21.66 --use_ssh 1 --link0 10.2.21.68 --link1 10.2.22.68",
    );
    assert!(
        o.code != 0
            && o.stderr
                .contains("authentication key '/etc/corosync/authkey' already exists")
    );
    let o = w.run(
        0,
        "pvecm create pvelab --link0 10.2.21.66 --link1 10.2.22.66",
    );
    assert!(o.code != 0 && o.stderr.contains("already exists"));
    // mon create before init.
    let o = w.run(0, "pveceph mon create");
    assert!(
        o.code != 0 && o.stderr.contains("pveceph configuration not initialized"),
        "{}",
        o.stderr
    );
    assert_eq!(w.run(0, "pveceph init --network 10.2.22.0/24").code, 0);
    assert_eq!(w.run(0, "pveceph mon create").code, 0);
    let o = w.run(0, "pveceph mon create");
    assert!(o.code != 0 && o.stderr.contains("monitor 'pve1' already exists"));
    // The first monitor brought a manager.
    let o = w.run(0, "pveceph mgr create");
    assert!(
        o.code != 0 && o.stderr.contains("already exists"),
        "{}",
        o.stderr
    );
    // fs create without a standby MDS: a failed task with exit 0.
    let o = w.run(
        0,
        "pveceph fs create --name cephfs01 --pg_num 128 --add-storage 1",
    );
    assert_eq!(o.code, 0);
    assert!(o
        .stderr
        .contains("TASK ERROR: no standby Metadata Server (MDS) found!"));
    // osd create on the boot disk or a used disk fails with the documented message.
    let o = w.run(0, "pveceph osd create /dev/sda");
    assert!(o.code != 0 && o.stderr.contains("device '/dev/sda' is already in use"));
    let o = w.run(0, "pveceph osd create /dev/nope");
    assert!(o
        .stderr
        .contains("unable to get device info for '/dev/nope'"));
    // Pool twice with a storage: the second exits 0 but the storage step failed.
    assert_eq!(
        w.run(
            0,
            "pveceph pool create p1 --size 3 --min_size 2 --add_storages 1"
        )
        .code,
        0
    );
    let o = w.run(
        0,
        "pveceph pool create p1 --size 3 --min_size 2 --add_storages 1",
    );
    assert_eq!(o.code, 0);
    assert!(o.stderr.contains("storage ID 'p1' already defined"));
    // Installing without an answer on stdin: apt aborts.
    let o = w.run_in(
        1,
        "pveceph install --version reef --repository no-subscription",
        None,
    );
    assert!(o.code != 0 && o.stderr.contains("Abort."));
}

#[test]
fn ceph_cli_needs_a_config_on_nodes_without_the_symlink() {
    let mut w = W::new();
    w.run(
        0,
        "pvecm create pvelab --link0 10.2.21.66 --link1 10.2.22.66",
    );
    let r = w.0.command(
        1,
        &argv("pvecm add 10.2.21.66 --use_ssh 1 --link0 10.2.21.67 --link1 10.2.22.67"),
        None,
    );
    w.0.now += r.latency_ms;
    w.run(0, "pveceph init --network 10.2.22.0/24");
    w.run(0, "pveceph mon create");
    assert_eq!(w.run(0, "ceph -s -f json").code, 0);
    let o = w.run(1, "ceph -s -f json");
    assert!(
        o.code != 0 && o.stderr.contains("conf_read_file"),
        "{}",
        o.stderr
    );
    assert_eq!(
        w.run(1, "ceph -s -f json --conf /etc/pve/ceph.conf").code,
        0
    );
}

#[test]
fn a_join_without_the_bootstrap_key_in_ssh_config_hangs() {
    let mut w = W::new();
    w.run(
        0,
        "pvecm create pvelab --link0 10.2.21.66 --link1 10.2.22.66",
    );
    w.0.write_file(
        1,
        "/root/.ssh/config",
        b"Host *\n    IdentityFile /root/.ssh/id_rsa\n",
    )
    .unwrap();
    let r = w.0.command(
        1,
        &argv("pvecm add 10.2.21.66 --use_ssh 1 --link0 10.2.21.67 --link1 10.2.22.67"),
        None,
    );
    assert!(
        r.latency_ms >= hcikit_sim::world::HANG,
        "ssh-copy-id waits for a password"
    );
    assert!(!w.0.is_member(1));
}
