//! The simulated `sendmail`: mails routed through the notification matchers, recorded, never sent.

use super::*;

impl World {
    pub(super) fn sendmail(&mut self, i: usize, stdin: Option<&[u8]>) -> Reply {
        let q = self.lat.write_ms;
        let text = String::from_utf8_lossy(stdin.unwrap_or_default()).into_owned();
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("(no subject)")
            .to_string();
        // proxmox-mail-forward: system-mail → every matcher without match rules → targets.
        let mut targets: BTreeSet<String> = BTreeSet::new();
        if self.is_member(i) {
            if !self.pmx.matchers.contains_key("default-matcher") {
                targets.insert("mail-to-root".into());
            }
            for t in self.pmx.matchers.values() {
                targets.extend(t.iter().cloned());
            }
        } else {
            targets.insert("mail-to-root".into());
        }
        let from = self.nodes[i].name.clone();
        for t in targets {
            self.mails.push(Mail {
                at_ms: self.now + q,
                from_node: from.clone(),
                target: t,
                subject: subject.clone(),
            });
        }
        ok(q, "")
    }
}
