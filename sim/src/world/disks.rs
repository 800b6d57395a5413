//! The simulated Disks: `ceph-volume lvm list/zap`, `lsblk --json`, `wipefs --json`.

use super::*;

impl World {
    pub(super) fn disk_mut(&mut self, i: usize, dev: &str) -> Option<&mut SimDisk> {
        self.nodes[i].disks.iter_mut().find(|d| d.path == dev)
    }

    pub(super) fn volume_list(&mut self, i: usize) -> Reply {
        let q = self.lat.query_ms;
        let mut m = serde_json::Map::new();
        for d in &self.nodes[i].disks {
            if let DiskContent::Osd { id, fsid } = &d.content {
                m.insert(id.to_string(), json!([{"devices":[d.path], "type":"block", "lv_name": format!("osd-block-sim{id}"),
                    "tags": {"ceph.cluster_fsid": fsid, "ceph.osd_id": id.to_string(), "ceph.type": "block"}}]));
            }
        }
        if m.is_empty() {
            return ok(q, "{}");
        }
        json_out(q, Value::Object(m))
    }

    pub(super) fn zap(&mut self, i: usize, p: &Parsed) -> Reply {
        let l = self.lat.zap_ms;
        let dev = p.pos[0].clone();
        let node = self.nodes[i].name.clone();
        let now = self.now;
        let Some(d) = self.disk_mut(i, &dev) else {
            return fail(
                self.lat.query_ms,
                1,
                format!("-->  RuntimeError: could not find device {dev}"),
            );
        };
        let before = d.content.clone();
        if d.boot {
            return fail(
                self.lat.query_ms,
                1,
                format!("-->  RuntimeError: {dev} is in use (mounted)"),
            );
        }
        d.content = DiskContent::Blank;
        self.disk_writes.push(DiskWrite {
            at_ms: now,
            node,
            device: dev.clone(),
            op: "zap".into(),
            before,
        });
        ok(
            l,
            format!("--> Zapping: {dev}\n--> Zapping successful for: <Raw Device: {dev}>\n"),
        )
    }

    pub(super) fn lsblk(&mut self, i: usize) -> Reply {
        let q = self.lat.disk_query_ms;
        let devs: Vec<Value> = self.nodes[i].disks.iter().map(|d| {
            let name = d.path.trim_start_matches("/dev/").to_string();
            if d.boot {
                return json!({"name":name,"path":d.path,"type":"disk","fstype":null,"mountpoint":null,"pttype":"gpt",
                    "children":[{"name":format!("{name}1"),"path":format!("{}1",d.path),"type":"part","fstype":"vfat","mountpoint":"/boot/efi","pttype":"gpt"},
                                {"name":format!("{name}2"),"path":format!("{}2",d.path),"type":"part","fstype":"ext4","mountpoint":"/","pttype":"gpt"}]});
            }
            match &d.content {
                DiskContent::Blank => json!({"name":name,"path":d.path,"type":"disk","fstype":null,"mountpoint":null,"pttype":null}),
                DiskContent::Gpt => json!({"name":name,"path":d.path,"type":"disk","fstype":null,"mountpoint":null,"pttype":"gpt",
                    "children":[{"name":format!("{name}1"),"path":format!("{}1",d.path),"type":"part","fstype":"xfs","mountpoint":null,"pttype":"gpt"}]}),
                DiskContent::Ext4 => json!({"name":name,"path":d.path,"type":"disk","fstype":"ext4","mountpoint":null,"pttype":null}),
                DiskContent::Lvm => json!({"name":name,"path":d.path,"type":"disk","fstype":"LVM2_member","mountpoint":null,"pttype":null}),
                DiskContent::Osd { id, .. } => json!({"name":name,"path":d.path,"type":"disk","fstype":"LVM2_member","mountpoint":null,"pttype":null,
                    "children":[{"name":format!("ceph--sim-osd--block--{id}"),"path":format!("/dev/mapper/ceph--sim-osd--block--{id}"),"type":"lvm","fstype":null,"mountpoint":null,"pttype":null}]}),
            }
        }).collect();
        json_out(q, json!({"blockdevices": devs}))
    }

    pub(super) fn wipefs(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.disk_query_ms;
        let dev = p.pos[0].clone();
        let Some(d) = self.nodes[i].disks.iter().find(|d| d.path == dev) else {
            return fail(q, 1, format!("wipefs: error: {dev}: probing initialization failed: No such file or directory"));
        };
        let short = dev.trim_start_matches("/dev/");
        let sigs: Vec<(&str, &str)> = match (&d.content, d.boot) {
            (_, true) | (DiskContent::Gpt, _) => vec![("0x200", "gpt"), ("0x1fe", "PMBR")],
            (DiskContent::Blank, _) => vec![],
            (DiskContent::Ext4, _) => vec![("0x438", "ext4")],
            (DiskContent::Lvm | DiskContent::Osd { .. }, _) => vec![("0x218", "LVM2_member")],
        };
        if sigs.is_empty() {
            return ok(q, "");
        }
        json_out(
            q,
            json!({"signatures": sigs.iter().map(|(o, t)| json!({"device": short, "offset": o, "type": t, "uuid": null, "label": null})).collect::<Vec<_>>()}),
        )
    }
}
