//! The installer's reader of a node image's block map (bmap, the XML `bmaptool create`
//! writes, format 2.x): which blocks hold data and the SHA-256 each range must hash to.
//!
//! Stricter than a general bmap reader: the installer writes nothing it cannot verify, so
//! every range must carry a SHA-256 and the file's own checksum must match.

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};

/// A parsed, self-consistent bmap whose every range has a checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmap {
    pub image_size: u64,
    pub block_size: u64,
    pub ranges: Vec<Range>,
}

/// Blocks `first..=last` and the SHA-256 of their bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub first: u64,
    pub last: u64,
    pub sha256: [u8; 32],
}

impl Bmap {
    /// Byte offset and length of a range in the image (the last block may be short).
    pub fn span(&self, r: &Range) -> (u64, u64) {
        let start = r.first * self.block_size;
        let end = ((r.last + 1) * self.block_size).min(self.image_size);
        (start, end - start)
    }

    /// Bytes the ranges cover.
    pub fn mapped_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| self.span(r).1).sum()
    }

    pub fn parse(bytes: &[u8]) -> Result<Bmap> {
        let text = std::str::from_utf8(bytes).context("the bmap is not UTF-8 text")?;
        let doc = roxmltree::Document::parse(text).context("the bmap is not well-formed XML")?;
        let root = doc.root_element();
        ensure!(
            root.has_tag_name("bmap"),
            "the bmap's root element is not <bmap>"
        );
        let version = root.attribute("version").unwrap_or("");
        ensure!(
            version.starts_with("2."),
            "bmap format version {version:?} is not supported (2.x)"
        );
        let field = |name: &str| -> Result<&str> {
            root.children()
                .find(|n| n.has_tag_name(name))
                .map(|n| n.text().unwrap_or("").trim())
                .with_context(|| format!("the bmap has no <{name}>"))
        };
        let number = |name: &str| -> Result<u64> {
            let t = field(name)?;
            t.parse()
                .with_context(|| format!("the bmap's <{name}> {t:?} is not a number"))
        };
        let image_size = number("ImageSize")?;
        let block_size = number("BlockSize")?;
        let blocks = number("BlocksCount")?;
        let mapped = number("MappedBlocksCount")?;
        ensure!(
            field("ChecksumType")?.eq_ignore_ascii_case("sha256"),
            "the bmap's checksums are not SHA-256"
        );
        ensure!(
            block_size > 0 && block_size % 512 == 0,
            "bad bmap block size {block_size}"
        );
        ensure!(
            blocks == image_size.div_ceil(block_size),
            "inconsistent bmap: <BlocksCount> {blocks} for {image_size} bytes"
        );
        let file_sum = field("BmapFileChecksum")?.to_ascii_lowercase();
        let want = hex_sha(&file_sum).context("the bmap's <BmapFileChecksum> is not a SHA-256")?;
        // The checksum is taken over the file with its own value replaced by zeros.
        let zeroed = text.replacen(&file_sum, &"0".repeat(64), 1);
        let got: [u8; 32] = Sha256::digest(zeroed.as_bytes()).into();
        ensure!(
            got == want,
            "the bmap's own checksum does not match: the file is damaged"
        );

        let map = root
            .children()
            .find(|n| n.has_tag_name("BlockMap"))
            .context("the bmap has no <BlockMap>")?;
        let mut ranges: Vec<Range> = Vec::new();
        for n in map.children().filter(|n| n.has_tag_name("Range")) {
            let t = n.text().unwrap_or("").trim();
            let (a, b) = t.split_once('-').unwrap_or((t, t));
            let (first, last): (u64, u64) = match (a.trim().parse(), b.trim().parse()) {
                (Ok(a), Ok(b)) if a <= b => (a, b),
                _ => bail!("bad bmap range {t:?}"),
            };
            let sum = n
                .attribute("chksum")
                .with_context(|| format!("bmap range {t} has no checksum"))?;
            let sha256 = hex_sha(sum).with_context(|| format!("bmap range {t}: bad checksum"))?;
            ensure!(last < blocks, "bmap range {t} runs past the image");
            if let Some(p) = ranges.last() {
                ensure!(
                    first > p.last,
                    "bmap range {t} overlaps or precedes the one before"
                );
            }
            ranges.push(Range {
                first,
                last,
                sha256,
            });
        }
        let covered: u64 = ranges.iter().map(|r| r.last - r.first + 1).sum();
        ensure!(
            covered == mapped,
            "inconsistent bmap: ranges cover {covered} blocks, <MappedBlocksCount> says {mapped}"
        );
        Ok(Bmap {
            image_size,
            block_size,
            ranges,
        })
    }
}

fn hex_sha(s: &str) -> Option<[u8; 32]> {
    let v = hex::decode(s.trim()).ok()?;
    v.try_into().ok()
}

/// Writes a bmap for tests and tools: ranges with checksums, file checksum filled in.
pub fn to_xml(image_size: u64, block_size: u64, ranges: &[Range]) -> String {
    let mapped: u64 = ranges.iter().map(|r| r.last - r.first + 1).sum();
    let mut s = format!(
        "<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n    <ImageSize> {image_size} </ImageSize>\n    \
         <BlockSize> {block_size} </BlockSize>\n    <BlocksCount> {} </BlocksCount>\n    \
         <MappedBlocksCount> {mapped} </MappedBlocksCount>\n    <ChecksumType> sha256 </ChecksumType>\n    \
         <BmapFileChecksum> {} </BmapFileChecksum>\n    <BlockMap>\n",
        image_size.div_ceil(block_size),
        "0".repeat(64)
    );
    for r in ranges {
        s.push_str(&format!(
            "        <Range chksum=\"{}\"> {}-{} </Range>\n",
            hex::encode(r.sha256),
            r.first,
            r.last
        ));
    }
    s.push_str("    </BlockMap>\n</bmap>\n");
    let sum = hex::encode(Sha256::digest(s.as_bytes()));
    s.replacen(&"0".repeat(64), &sum, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        let r = vec![
            Range {
                first: 0,
                last: 1,
                sha256: [1; 32],
            },
            Range {
                first: 5,
                last: 5,
                sha256: [2; 32],
            },
        ];
        to_xml(10 * 4096 - 100, 4096, &r)
    }

    #[test]
    fn round_trip_and_spans() {
        let b = Bmap::parse(sample().as_bytes()).unwrap();
        assert_eq!(b.ranges.len(), 2);
        assert_eq!(b.span(&b.ranges[1]), (5 * 4096, 4096));
        assert_eq!(b.mapped_bytes(), 3 * 4096);
    }

    #[test]
    fn damage_is_refused() {
        let s = sample().replace("5-5", "6-6");
        let e = Bmap::parse(s.as_bytes()).unwrap_err();
        assert!(format!("{e:#}").contains("own checksum"), "{e:#}");
        let no_sum = sample().replacen(" chksum=\"", " x=\"", 1);
        assert!(Bmap::parse(no_sum.as_bytes()).is_err());
    }

    #[test]
    fn reads_the_builders_fixture() {
        let text = include_str!("../../../tests/fixtures/bmap/sample.img.bmap");
        let b = Bmap::parse(text.as_bytes()).unwrap();
        assert!(!b.ranges.is_empty());
    }
}
