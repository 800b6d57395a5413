//! `corosync.conf`: the node list and rings as pvecm writes them.

use anyhow::{anyhow, Result};
use hcikit_firstboot::plan::*;
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct CorosyncView {
    /// Node blocks sorted by name, as pvecm writes them.
    nodes: Vec<CorosyncNode>,
    /// `totem.token_coefficient`: pve-cluster 9.1.0 and later (PVE 9, commit a7b1c76) pass it to
    /// `create_conf` (`src/PVE/API2/ClusterConfig.pm` `create`: `token-coefficient //=
    /// 125`); PVE 8's pvecm writes none. A PVE 9.0 node (pve-cluster < 9.1) writes none
    /// either: hcikit cannot know the minor release at build time and renders what the
    /// current 9.x writes (docs/proxmox-source.md).
    token_coefficient: Option<u32>,
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
    Ok(CorosyncView {
        nodes,
        token_coefficient: (plan.cluster.pve_major >= 9).then_some(125),
    })
}
