//! `hcikit inspect`: what an image holds, read back with the `gpt` and `fatfs` crates.
//! Lists secret files by name only; never prints a secret's contents.

use crate::error::InputError;
use crate::image::esp;
use anyhow::{Context, Result};
use hcikit_firstboot::layout;
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    pub file: String,
    pub compressed: bool,
    pub file_sha256: String,
    /// Whether `SHA256SUMS` beside the image lists this file with the same hash.
    pub sha256sums_match: Option<bool>,
    pub disk_size: u64,
    pub disk_guid: String,
    pub partitions: Vec<PartitionInfo>,
    /// Node name in `hcikit/node`; absent in a fleet image.
    pub node: Option<String>,
    pub esp_files: Vec<EspFile>,
    pub boot_options: Option<String>,
    pub plan: Option<PlanSummary>,
    /// Per node folder: the paths in `files.tar` and `secrets.tar` (names only).
    pub node_files: Vec<NodeFiles>,
    pub root_fs: Option<RootFs>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PartitionInfo {
    pub number: u32,
    pub name: String,
    pub type_guid: String,
    pub partuuid: String,
    pub start: u64,
    pub size: u64,
}

#[derive(Debug, Serialize)]
pub struct EspFile {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PlanSummary {
    pub cluster: String,
    pub domain: String,
    pub pve_major: u8,
    pub founder: String,
    pub nodes: Vec<String>,
    pub ceph: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct NodeFiles {
    pub node: String,
    pub files: Vec<TarEntry>,
    pub secrets: Vec<TarEntry>,
}

#[derive(Debug, Serialize)]
pub struct TarEntry {
    pub path: String,
    pub mode: String,
    pub size: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RootFs {
    pub kind: String,
    pub uuid: String,
    pub label: String,
    pub size: u64,
}

/// Largest ESP `inspect` reads into memory; hcikit's own are far smaller.
const MAX_ESP: u64 = 8 << 30;

/// Reads an image (raw or `.zst`) and describes it. Every size read from the image is
/// checked against the file before it is used, so a crafted or truncated image gives an
/// error (bad input, naming the image), never a panic, a huge allocation or a hang.
pub fn inspect(path: &Path) -> Result<Report> {
    inspect_file(path).with_context(|| format!("inspecting {}", path.display()))
}

/// Bad input about the image at `path`.
fn corrupt(path: &Path, what: impl std::fmt::Display) -> anyhow::Error {
    InputError::new(format!("{}: {what}", path.display())).into()
}

fn inspect_file(path: &Path) -> Result<Report> {
    if !path.is_file() {
        return Err(InputError::new(format!("{}: no such image file", path.display())).into());
    }
    let compressed = path.extension().is_some_and(|e| e == "zst");
    let tmp;
    let raw: PathBuf = if compressed {
        tmp = tempfile::NamedTempFile::new().context("creating a scratch file")?;
        decompress_sparse(path, tmp.path())?;
        tmp.path().to_path_buf()
    } else {
        path.to_path_buf()
    };
    let file_sha256 = crate::image::output::sha256_file(path)?;
    let sha256sums_match = sums_match(path, &file_sha256);
    let disk_size = std::fs::metadata(&raw)?.len();
    check_gpt_header(&raw).map_err(|e| corrupt(path, format!("no valid GPT: {e}")))?;
    let disk = gpt::GptConfig::new()
        .open(&raw)
        .map_err(|e| corrupt(path, format!("no valid GPT: {e}")))?;
    let mut partitions = Vec::new();
    for (n, p) in disk.partitions() {
        let bytes = (p.first_lba <= p.last_lba)
            .then(|| p.last_lba - p.first_lba + 1)
            .and_then(|sectors| sectors.checked_mul(512))
            .ok_or_else(|| corrupt(path, format!("partition {n} ends before it starts")))?;
        let start = p
            .first_lba
            .checked_mul(512)
            .ok_or_else(|| corrupt(path, format!("partition {n} starts beyond any disk")))?;
        let fits = matches!(start.checked_add(bytes), Some(end) if end <= disk_size);
        if !fits {
            return Err(corrupt(
                path,
                format!(
                    "partition {n} ({bytes} bytes at {start}) runs past the end of the image \
                     ({disk_size} bytes): the image is truncated or its partition table is wrong"
                ),
            ));
        }
        partitions.push(PartitionInfo {
            number: *n,
            name: p.name.clone(),
            type_guid: p.part_type_guid.guid.to_string().to_uppercase(),
            partuuid: p.part_guid.to_string(),
            start,
            size: bytes,
        });
    }
    let f = std::fs::File::open(&raw)?;
    let esp_part = partitions
        .iter()
        .find(|p| p.type_guid == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    let mut report = Report {
        file: path.display().to_string(),
        compressed,
        file_sha256,
        sha256sums_match,
        disk_size,
        disk_guid: disk.guid().to_string(),
        partitions: Vec::new(),
        node: None,
        esp_files: Vec::new(),
        boot_options: None,
        plan: None,
        node_files: Vec::new(),
        root_fs: None,
    };
    if let Some(p) = esp_part {
        if p.size > MAX_ESP {
            return Err(corrupt(
                path,
                format!(
                    "the ESP is {} bytes, more than any hcikit image has ({MAX_ESP})",
                    p.size
                ),
            ));
        }
        let mut bytes = vec![0u8; p.size as usize];
        f.read_exact_at(&mut bytes, p.start)
            .with_context(|| format!("reading the ESP of {}", path.display()))?;
        report.esp_files = esp::list_fat(&bytes)
            .map_err(|e| corrupt(path, format!("the ESP is corrupt: {e:#}")))?
            .into_iter()
            .map(|(path, size)| EspFile { path, size })
            .collect();
        let read = |p: &str| esp::read_fat_file(&bytes, p).ok();
        report.node =
            read(layout::ESP_NODE).map(|b| String::from_utf8_lossy(&b).trim().to_string());
        report.boot_options = read(esp::LOADER_ENTRY).and_then(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .find_map(|l| l.strip_prefix("options").map(|o| o.trim().to_string()))
        });
        if let Some(j) = read(layout::ESP_PLAN) {
            let plan: hcikit_firstboot::plan::Plan = serde_json::from_slice(&j)
                .map_err(|e| corrupt(path, format!("hcikit/plan.json on the ESP: {e}")))?;
            report.plan = Some(PlanSummary {
                cluster: plan.cluster.name.clone(),
                domain: plan.cluster.domain.clone(),
                pve_major: plan.cluster.pve_major,
                founder: plan.cluster.founder.clone(),
                nodes: plan.nodes.iter().map(|n| n.name.clone()).collect(),
                ceph: plan
                    .ceph
                    .as_ref()
                    .map(|c| format!("{} {}", c.release, c.version)),
            });
        }
        let prefix = format!("{}/", layout::ESP_NODES_DIR);
        let mut names: Vec<String> = report
            .esp_files
            .iter()
            .filter_map(|e| e.path.strip_prefix(&prefix))
            .filter_map(|rest| rest.split_once('/').map(|(n, _)| n.to_string()))
            .collect();
        names.dedup();
        for n in names {
            let dir = layout::esp_node_dir(&n);
            let list = |name: &str| -> Result<Vec<TarEntry>> {
                match read(&format!("{dir}/{name}")) {
                    Some(t) => tar_listing(&t)
                        .map_err(|e| corrupt(path, format!("{dir}/{name} on the ESP: {e:#}"))),
                    None => Ok(Vec::new()),
                }
            };
            report.node_files.push(NodeFiles {
                files: list(layout::FILES_TAR)?,
                secrets: list(layout::SECRETS_TAR)?,
                node: n,
            });
        }
    }
    if let Some(p) = partitions.iter().find(|p| p.number == 2) {
        report.root_fs = ext4_superblock(&f, p.start)
            .map_err(|e| corrupt(path, format!("reading the root file system: {e}")))?;
    }
    report.partitions = partitions;
    Ok(report)
}

/// The primary GPT header's entry count and size, checked before the `gpt` crate
/// allocates for them.
fn check_gpt_header(raw: &Path) -> Result<()> {
    let f = std::fs::File::open(raw)?;
    let mut h = [0u8; 92];
    f.read_exact_at(&mut h, 512)
        .map_err(|_| anyhow::anyhow!("the file is too short for a partition table"))?;
    anyhow::ensure!(&h[..8] == b"EFI PART", "no GPT header signature");
    let count = u32::from_le_bytes(h[80..84].try_into().expect("4 bytes"));
    let size = u32::from_le_bytes(h[84..88].try_into().expect("4 bytes"));
    anyhow::ensure!(
        count <= 1024 && (128..=4096).contains(&size) && size.is_power_of_two(),
        "partition entry array of {count} entries of {size} bytes"
    );
    Ok(())
}

fn tar_listing(bytes: &[u8]) -> Result<Vec<TarEntry>> {
    let mut a = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in a.entries()? {
        let e = e?;
        out.push(TarEntry {
            path: format!("/{}", e.path()?.display()),
            mode: format!("{:04o}", e.header().mode()?),
            size: e.size(),
        });
    }
    Ok(out)
}

/// UUID, label and size from an ext4 superblock at `start + 1024`.
fn ext4_superblock(f: &std::fs::File, start: u64) -> Result<Option<RootFs>> {
    let mut sb = [0u8; 1024];
    f.read_exact_at(&mut sb, start + 1024)?;
    if sb[0x38..0x3a] != [0x53, 0xef] {
        return Ok(None);
    }
    let blocks = u64::from(u32::from_le_bytes(sb[4..8].try_into().expect("4 bytes")))
        | (u64::from(u32::from_le_bytes(
            sb[0x150..0x154].try_into().expect("4 bytes"),
        )) << 32);
    let block_size = 1024u64 << u32::from_le_bytes(sb[0x18..0x1c].try_into().expect("4 bytes"));
    let uuid = uuid::Uuid::from_slice(&sb[0x68..0x78]).expect("16 bytes");
    let label = String::from_utf8_lossy(&sb[0x78..0x88])
        .trim_end_matches('\0')
        .to_string();
    Ok(Some(RootFs {
        kind: "ext4".into(),
        uuid: uuid.to_string(),
        label,
        size: blocks * block_size,
    }))
}

fn sums_match(path: &Path, sha: &str) -> Option<bool> {
    let sums = std::fs::read_to_string(path.with_file_name("SHA256SUMS")).ok()?;
    let name = path.file_name()?.to_str()?;
    sums.lines().find_map(|l| {
        let (h, n) = l.split_once("  ")?;
        (n == name).then(|| h == sha)
    })
}

/// Decompresses a `.zst` image into `out`, leaving zero blocks as holes.
fn decompress_sparse(src: &Path, out: &Path) -> Result<()> {
    let input = std::fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let mut dec = zstd::stream::read::Decoder::new(input)?;
    let mut o = std::fs::OpenOptions::new().write(true).open(out)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = dec.read(&mut buf[filled..]).map_err(|e| {
                InputError::new(format!("{}: corrupt zstd data: {e}", src.display()))
            })?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        static ZERO: [u8; 4096] = [0; 4096];
        for (i, chunk) in buf[..filled].chunks(4096).enumerate() {
            if chunk != &ZERO[..chunk.len()] {
                o.seek(SeekFrom::Start(pos + (i * 4096) as u64))?;
                std::io::Write::write_all(&mut o, chunk)?;
            }
        }
        pos += filled as u64;
    }
    o.set_len(pos)?;
    Ok(())
}

/// The human-readable report.
pub fn human(r: &Report) -> String {
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line(format!(
        "image     {}{}",
        r.file,
        if r.compressed { " (zstd)" } else { "" }
    ));
    line(format!(
        "sha256    {}{}",
        r.file_sha256,
        match r.sha256sums_match {
            Some(true) => "  (matches SHA256SUMS)",
            Some(false) => "  (DOES NOT MATCH SHA256SUMS)",
            None => "",
        }
    ));
    line(format!(
        "disk      {} MiB, GPT {}",
        r.disk_size >> 20,
        r.disk_guid
    ));
    line(format!(
        "node      {}",
        r.node.as_deref().unwrap_or("(fleet image: none fixed)")
    ));
    if let Some(p) = &r.plan {
        line(format!(
            "cluster   {} ({}), PVE {}, founder {}, nodes {}{}",
            p.cluster,
            p.domain,
            p.pve_major,
            p.founder,
            p.nodes.join(" "),
            p.ceph
                .as_ref()
                .map(|c| format!(", ceph {c}"))
                .unwrap_or_default()
        ));
    }
    if let Some(o) = &r.boot_options {
        line(format!("boot      {o}"));
    }
    if let Some(fs) = &r.root_fs {
        line(format!(
            "root fs   {} uuid {} label {} ({} MiB)",
            fs.kind,
            fs.uuid,
            fs.label,
            fs.size >> 20
        ));
    }
    line("partitions".into());
    for p in &r.partitions {
        line(format!(
            "  {}  {:<5} start {:>6} MiB  size {:>6} MiB  type {}  partuuid {}",
            p.number,
            p.name,
            p.start >> 20,
            p.size >> 20,
            p.type_guid,
            p.partuuid
        ));
    }
    line("ESP files".into());
    for f in &r.esp_files {
        line(format!("  {:>10}  {}", f.size, f.path));
    }
    for n in &r.node_files {
        line(format!("node files of {} (files.tar)", n.node));
        for e in &n.files {
            line(format!("  {}  {:>8}  {}", e.mode, e.size, e.path));
        }
        line(format!(
            "secret files of {} (secrets.tar, contents not shown)",
            n.node
        ));
        for e in &n.secrets {
            line(format!("  {}  {:>8}  {}", e.mode, e.size, e.path));
        }
    }
    s
}
