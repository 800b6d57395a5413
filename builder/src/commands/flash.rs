//! `hcikit flash IMAGE DEVICE`: checks everything, asks, writes the bmap's ranges, verifies.

use crate::error::InputError;
use crate::media::flash::{self, Options};
use crate::progress::Progress;
use crate::units::human_bytes;
use anyhow::{Context, Result};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: a raw `.img` or a zstd-compressed `.img.zst`.
    pub image: PathBuf,
    /// The whole disk to overwrite, e.g. /dev/sdb. Partitions, mounted disks and the disk
    /// holding / are refused.
    pub device: PathBuf,
    /// The bmap to use (default: IMAGE.bmap, or x.img.bmap for x.img.zst).
    #[arg(long, value_name = "FILE", conflicts_with = "no_bmap")]
    pub bmap: Option<PathBuf>,
    /// Write every block of the image, holes included (slower; for images without a bmap).
    #[arg(long)]
    pub no_bmap: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Accept a regular file as DEVICE (it must already be at least as big as the image).
    #[arg(long)]
    pub allow_file: bool,
}

pub fn run(args: Args) -> Result<()> {
    let opts = Options {
        image: args.image,
        device: args.device,
        bmap: args.bmap,
        no_bmap: args.no_bmap,
        allow_file: args.allow_file,
    };
    let prepared = flash::prepare(&opts)?;
    if args.yes {
        println!("{}", prepared.summary());
    } else {
        confirm(&prepared)?;
    }
    let target = prepared.target.path.display().to_string();
    let report = prepared.write(Progress::auto())?;
    println!(
        "flashed {target}: {} of {} written in {} range{}, verified, in {:.1}s",
        human_bytes(report.bytes_written),
        human_bytes(report.image_size),
        report.ranges,
        if report.ranges == 1 { "" } else { "s" },
        report.elapsed.as_secs_f64()
    );
    Ok(())
}

/// Shows what will be overwritten and wants the device path typed back, so a slip of the
/// Enter key cannot wipe a disk. Without a terminal there is no one to ask: `--yes` it is.
fn confirm(p: &flash::Prepared) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(InputError::new(
            "refusing to overwrite a disk without confirmation: stdin is not a terminal; \
             pass --yes",
        )
        .into());
    }
    let target = p.target.path.display().to_string();
    let mut out = std::io::stderr().lock();
    writeln!(out, "{}", p.summary())?;
    write!(
        out,
        "Everything on {target} will be lost. Type the device path ({target}) to go on: "
    )?;
    out.flush()?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    if answer.trim() != target {
        return Err(InputError::new(format!("not confirmed; {target} was not touched")).into());
    }
    Ok(())
}
