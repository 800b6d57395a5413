//! `corosync.conf`: the node list and rings as pvecm writes them.

use anyhow::{anyhow, Result};
use hcikit_firstboot::plan::*;
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct CorosyncView {
    /// Node blocks sorted by name, as pvecm writes them.
    nodes: Vec<CorosyncNode>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
struct CorosyncNode {
    name: String,
    nodeid: u32,
    quorum_votes: u32,
    /// `ringN_addr` by ascending link number.
    rings: Vec<Ring>,
}

#[derive(Debug, Serialize)]
struct Ring {
    number: u8,
    addr: String,
}

pub(crate) fn corosync(plan: &Plan) -> Result<CorosyncView> {
    let mut nodes = plan
        .nodes
        .iter()
        .map(|n| {
            let mut rings = plan
                .corosync
                .links
                .iter()
                .map(|l| {
                    let ip = n
                        .links
                        .iter()
                        .find(|nl| nl.number == l.number)
                        .map(|nl| nl.ip.clone())
                        .ok_or_else(|| {
                            anyhow!(
                                "node {} has no address for corosync link{}",
                                n.name,
                                l.number
                            )
                        })?;
                    Ok(Ring {
                        number: l.number,
                        addr: ip,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            rings.sort_by_key(|r| r.number);
            Ok(CorosyncNode {
                name: n.name.clone(),
                nodeid: n.nodeid,
                quorum_votes: 1,
                rings,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // pvecm sorts node blocks by name (Perl string order = byte order).
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(CorosyncView { nodes })
}
