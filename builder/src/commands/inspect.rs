//! `hcikit inspect`: partitions, ESP files, node identity, plan summary, checksums.

use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An image built by `hcikit build`: `<node>.img` or `<node>.img.zst`.
    pub image: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let report = crate::media::inspect::inspect(&args.image)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        out.write_all(crate::media::inspect::human(&report).as_bytes())?;
    }
    Ok(())
}
