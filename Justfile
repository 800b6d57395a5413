# hcikit's front door. `just --list` shows the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Build both binaries (release: the agent goes into the images).
build:
    cargo build --release --workspace --bins --locked

# Every test of the workspace (unit, golden, image, simulated cluster). Tests that run the
# `hcikit` binary build it themselves (`hcikit_tests::hcikit_bin`).
test:
    cargo test --workspace --locked

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Build the lab example's three node images into out/ from the default Debian base.
demo: build
    target/release/hcikit build examples/lab.toml -o out
    ls -l out

# Benchmarks: image build ratios and the simulated first-boot makespan.
bench: build
    bash scripts/bench.sh

# Real VMs: three node images booted under QEMU/OVMF, corosync quorum on both links.
vm-test: build
    cargo test -p hcikit-tests --test vm -- --ignored --nocapture --test-threads=1

# The `proxmox` base end to end without Proxmox's servers: a local signed apt repository of
# stand-in packages, the whole recipe through mmdebstrap, the base booted in QEMU.
apt-test:
    cargo test -p hcikit-tests --test apt_repo -- --ignored --nocapture --test-threads=1

# The install tier (in CI): the USB installer stick booted in QEMU/OVMF in three mini PCs
# with an NVMe target and decoy disks, three guests at a time next to the refusals; then
# the installed disks boot without the stick as a cluster and pass the VM tier's checks
# up to corosync quorum. Prints per-phase and total wall times (docs/install.md).
install-test: build
    cargo test -p hcikit-tests --test install_vm -- --ignored --nocapture --test-threads=1

# The network install tier: `hcikit build --pxe`, dnsmasq and `hcikit serve` in a network
# namespace of the test's own, three QEMU/OVMF nodes installing at once, then the
# unknown-MAC and changed-payload negatives (needs root; see docs/vm-test.md).
netinstall-test: build
    cargo test -p hcikit-tests --test netinstall_vm -- --ignored --nocapture --test-threads=1

# Regenerate the golden spec outputs after an intended change; review `git diff` after.
bless:
    HCIKIT_BLESS=1 cargo test -p hcikit-tests --test spec_golden
    HCIKIT_BLESS=1 cargo test -p hcikit-tests --test render_golden

# Simulated first boot of both scenarios: makespan against the critical path.
bench-sim:
    cargo bench -p hcikit-sim --bench sim

# Regenerate the checked-in man page, completions and spec schema under docs/ after a CLI
# or spec change; review `git diff docs/` after.
gen:
    HCIKIT_BLESS=1 cargo test -p hcikit-tests --test drift
