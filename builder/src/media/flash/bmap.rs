//! The block map ("bmap") of a disk image: which blocks hold data, with a SHA-256 per range.
//!
//! The format is the XML that `bmaptool create` writes (bmap-tools; format version 2.0, of
//! which 1.4 is an earlier name). Only SHA-256 checksums are accepted: older formats used
//! SHA-1 and no current tool writes them.

use crate::error::InputError;
use anyhow::Result;
use sha2::{Digest, Sha256};

/// A parsed and self-consistent bmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmap {
    /// Size in bytes of the raw (decompressed) image the map describes.
    pub image_size: u64,
    pub block_size: u64,
    pub blocks_count: u64,
    pub mapped_blocks_count: u64,
    /// The `BmapFileChecksum` as written (lower-case hex).
    pub file_checksum: String,
    /// Mapped block ranges, ascending and non-overlapping.
    pub ranges: Vec<BlockRange>,
}

/// Blocks `first..=last` of the image, with the SHA-256 of their bytes when the bmap has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRange {
    pub first: u64,
    pub last: u64,
    pub sha256: Option<[u8; 32]>,
}

impl BlockRange {
    pub fn blocks(&self) -> u64 {
        self.last - self.first + 1
    }
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    InputError::new(msg).into()
}

impl Bmap {
    /// Parses a bmap file and checks it: its own checksum, the version, and that the
    /// counts, sizes and ranges agree with each other.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bmap> {
        let text = std::str::from_utf8(bytes).map_err(|_| bad("the bmap is not UTF-8 text"))?;
        let bmap = Bmap::parse(text)?;
        verify_file_checksum(bytes, &bmap.file_checksum)?;
        Ok(bmap)
    }

    /// Parses the XML and checks its internal consistency (not the file checksum).
    pub fn parse(text: &str) -> Result<Bmap> {
        let doc = roxmltree::Document::parse(text)
            .map_err(|e| bad(format!("the bmap is not well-formed XML: {e}")))?;
        let root = doc.root_element();
        if !root.has_tag_name("bmap") {
            return Err(bad(format!(
                "the bmap's root element is <{}>, expected <bmap>",
                root.tag_name().name()
            )));
        }
        let version = root
            .attribute("version")
            .ok_or_else(|| bad("the bmap has no version attribute"))?;
        let (major, minor) = version
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
            .ok_or_else(|| bad(format!("the bmap version {version:?} is not major.minor")))?;
        if !(major == 2 || (major == 1 && minor == 4)) {
            return Err(bad(format!(
                "bmap format version {version} is not supported (only 2.x, as `bmaptool create` writes it)"
            )));
        }

        let field = |name: &str| -> Result<&str> {
            root.children()
                .find(|n| n.has_tag_name(name))
                .map(|n| n.text().unwrap_or("").trim())
                .ok_or_else(|| bad(format!("the bmap has no <{name}>")))
        };
        let number = |name: &str| -> Result<u64> {
            let t = field(name)?;
            t.parse()
                .map_err(|_| bad(format!("the bmap's <{name}> {t:?} is not a number")))
        };

        let image_size = number("ImageSize")?;
        let block_size = number("BlockSize")?;
        let blocks_count = number("BlocksCount")?;
        let mapped_blocks_count = number("MappedBlocksCount")?;
        let checksum_type = field("ChecksumType")?;
        if !checksum_type.eq_ignore_ascii_case("sha256") {
            return Err(bad(format!(
                "the bmap uses {checksum_type} checksums; only sha256 is supported"
            )));
        }
        let file_checksum = field("BmapFileChecksum")?.to_ascii_lowercase();
        parse_sha256(&file_checksum)
            .ok_or_else(|| bad("the bmap's <BmapFileChecksum> is not a SHA-256 in hex"))?;

        if block_size == 0 {
            return Err(bad("the bmap's block size is 0"));
        }
        if blocks_count != image_size.div_ceil(block_size) {
            return Err(bad(format!(
                "inconsistent bmap: {image_size} bytes in {block_size}-byte blocks are {} blocks, \
                 but <BlocksCount> says {blocks_count}",
                image_size.div_ceil(block_size)
            )));
        }

        let map = root
            .children()
            .find(|n| n.has_tag_name("BlockMap"))
            .ok_or_else(|| bad("the bmap has no <BlockMap>"))?;
        let mut ranges: Vec<BlockRange> = Vec::new();
        for node in map.children().filter(|n| n.has_tag_name("Range")) {
            let range = parse_range(node.text().unwrap_or("").trim(), node.attribute("chksum"))?;
            if range.last >= blocks_count {
                return Err(bad(format!(
                    "bmap range {}-{} runs past the image's {blocks_count} blocks",
                    range.first, range.last
                )));
            }
            if let Some(prev) = ranges.last() {
                if range.first <= prev.last {
                    return Err(bad(format!(
                        "bmap range {}-{} overlaps or comes before {}-{}",
                        range.first, range.last, prev.first, prev.last
                    )));
                }
            }
            ranges.push(range);
        }
        let mapped: u64 = ranges.iter().map(BlockRange::blocks).sum();
        if mapped != mapped_blocks_count {
            return Err(bad(format!(
                "inconsistent bmap: its ranges cover {mapped} blocks, but <MappedBlocksCount> says \
                 {mapped_blocks_count}"
            )));
        }

        Ok(Bmap {
            image_size,
            block_size,
            blocks_count,
            mapped_blocks_count,
            file_checksum,
            ranges,
        })
    }

    /// Byte offset and length of `range` in the image; the last block may be short.
    pub fn byte_span(&self, range: &BlockRange) -> (u64, u64) {
        let start = range.first * self.block_size;
        let end = ((range.last + 1) * self.block_size).min(self.image_size);
        (start, end - start)
    }

    /// Bytes that a bmap-guided write copies.
    pub fn mapped_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| self.byte_span(r).1).sum()
    }
}

/// `"a-b"` or `"a"` (a single block), with an optional `chksum` attribute.
fn parse_range(text: &str, chksum: Option<&str>) -> Result<BlockRange> {
    let num = |s: &str| {
        s.trim().parse::<u64>().map_err(|_| {
            bad(format!(
                "bmap range {text:?} is not \"first-last\" block numbers"
            ))
        })
    };
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(text)?;
            (n, n)
        }
    };
    if last < first {
        return Err(bad(format!("bmap range {text:?} ends before it starts")));
    }
    let sha256 = match chksum {
        None => None,
        Some(c) => Some(parse_sha256(c.trim()).ok_or_else(|| {
            bad(format!(
                "bmap range {text:?} has chksum {c:?}, which is not a SHA-256 in hex"
            ))
        })?),
    };
    Ok(BlockRange {
        first,
        last,
        sha256,
    })
}

fn parse_sha256(hex_text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

/// Checks `BmapFileChecksum`: the SHA-256 of the whole file with the checksum's own text
/// (its first occurrence) replaced by as many ASCII `0`s. This is how bmap-tools computes
/// it, so it catches any edit of the map after `bmaptool create` wrote it.
pub fn verify_file_checksum(bytes: &[u8], checksum: &str) -> Result<()> {
    let pattern = checksum.as_bytes();
    // The value may be written in upper case; match it as it stands in the file.
    let pos = bytes
        .windows(pattern.len())
        .position(|w| w.eq_ignore_ascii_case(pattern))
        .ok_or_else(|| bad("the bmap's checksum text is not found in the file"))?;
    let mut hasher = Sha256::new();
    hasher.update(&bytes[..pos]);
    hasher.update(vec![b'0'; pattern.len()]);
    hasher.update(&bytes[pos + pattern.len()..]);
    let actual = hex::encode(hasher.finalize());
    if actual != checksum.to_ascii_lowercase() {
        return Err(bad(format!(
            "the bmap's own checksum does not match (file hashes to {actual}, it says {checksum}): \
             the bmap was edited or damaged after it was created"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(size: u64, count: u64, mapped: u64, ranges: &str) -> String {
        format!(
            r#"<?xml version="1.0" ?>
<!-- a comment, as bmaptool writes many -->
<bmap version="2.0">
  <ImageSize> {size} </ImageSize>
  <BlockSize> 4096 </BlockSize>
  <BlocksCount> {count} </BlocksCount>
  <MappedBlocksCount> {mapped} </MappedBlocksCount>
  <ChecksumType> sha256 </ChecksumType>
  <BmapFileChecksum> {} </BmapFileChecksum>
  <BlockMap>{ranges}</BlockMap>
</bmap>"#,
            "0".repeat(64)
        )
    }

    #[test]
    fn single_blocks_ranges_and_short_last_block() {
        let b = Bmap::parse(&xml(
            3 * 4096 + 10,
            4,
            3,
            "<Range> 0 </Range><Range>2-3</Range>",
        ))
        .unwrap();
        assert_eq!(b.ranges.len(), 2);
        assert_eq!(b.byte_span(&b.ranges[0]), (0, 4096));
        assert_eq!(b.byte_span(&b.ranges[1]), (8192, 4096 + 10));
        assert_eq!(b.mapped_bytes(), 2 * 4096 + 10);
        assert!(b.ranges[0].sha256.is_none());
    }

    #[test]
    fn inconsistent_counts_are_refused() {
        let e = Bmap::parse(&xml(8192, 3, 1, "<Range>0</Range>")).unwrap_err();
        assert!(format!("{e}").contains("<BlocksCount> says 3"), "{e}");
        let e = Bmap::parse(&xml(8192, 2, 2, "<Range>0</Range>")).unwrap_err();
        assert!(format!("{e}").contains("cover 1 blocks"), "{e}");
        let e = Bmap::parse(&xml(8192, 2, 2, "<Range>1-2</Range>")).unwrap_err();
        assert!(format!("{e}").contains("runs past"), "{e}");
        let e = Bmap::parse(&xml(8192, 2, 2, "<Range>1</Range><Range>0</Range>")).unwrap_err();
        assert!(format!("{e}").contains("overlaps"), "{e}");
    }

    #[test]
    fn other_versions_and_checksum_types_are_refused() {
        let v1 = xml(4096, 1, 1, "<Range>0</Range>").replace("\"2.0\"", "\"1.2\"");
        assert!(format!("{}", Bmap::parse(&v1).unwrap_err()).contains("1.2 is not supported"));
        let sha1 = xml(4096, 1, 1, "<Range>0</Range>").replace("sha256", "sha1");
        assert!(format!("{}", Bmap::parse(&sha1).unwrap_err()).contains("sha1 checksums"));
    }
}
