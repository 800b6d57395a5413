//! The bmap writer: the XML (format 2.0, sha256) that `bmaptool copy` and
//! [`crate::media::flash::bmap`] read. The ranges come from the sparse writer in
//! [`super::output`], so no image is scanned again to make it.

use super::output::{Range, BLOCK};
use sha2::{Digest, Sha256};

/// The bmap (format 2.0, sha256) of an image.
pub fn bmap_xml(image_size: u64, ranges: &[Range]) -> String {
    let blocks = image_size.div_ceil(BLOCK);
    let mapped: u64 = ranges.iter().map(Range::blocks).sum();
    let mut s = format!(
        "<?xml version=\"1.0\" ?>\n<!-- Block map of an hcikit node image: the blocks that hold data. -->\n\
         <bmap version=\"2.0\">\n    <ImageSize> {image_size} </ImageSize>\n    <BlockSize> {BLOCK} </BlockSize>\n    \
         <BlocksCount> {blocks} </BlocksCount>\n    <MappedBlocksCount> {mapped} </MappedBlocksCount>\n    \
         <ChecksumType> sha256 </ChecksumType>\n    <BmapFileChecksum> {zero} </BmapFileChecksum>\n    <BlockMap>\n",
        zero = "0".repeat(64)
    );
    for r in ranges {
        let span = if r.first == r.last {
            r.first.to_string()
        } else {
            format!("{}-{}", r.first, r.last)
        };
        s.push_str(&format!(
            "        <Range chksum=\"{}\"> {span} </Range>\n",
            r.sha256
        ));
    }
    s.push_str("    </BlockMap>\n</bmap>\n");
    // The file checksum is computed with its own field all zeros, then filled in.
    let sum = hex::encode(Sha256::digest(s.as_bytes()));
    s.replacen(&"0".repeat(64), &sum, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bmap_checksum_matches_the_zeroed_file() {
        let ranges = vec![Range {
            first: 0,
            last: 3,
            sha256: "ab".repeat(32),
        }];
        let x = bmap_xml(10 * BLOCK, &ranges);
        let start = x.find("<BmapFileChecksum> ").unwrap() + 19;
        let sum = &x[start..start + 64];
        let zeroed = x.replacen(sum, &"0".repeat(64), 1);
        assert_eq!(sum, hex::encode(Sha256::digest(zeroed.as_bytes())));
        assert!(x.contains("<MappedBlocksCount> 4 </MappedBlocksCount>"));
        assert!(x.contains("<BlocksCount> 10 </BlocksCount>"));
    }
}
