//! Secret values: what the Plan names by [`SecretRef`] but never contains.
//!
//! Values come from the spec (root password hash, SMTP passwords, realm bind passwords,
//! read from files next to the spec) and from the cluster's secrets seed (SSH host keys,
//! the bootstrap key, the corosync authkey). `Debug` never prints a value.

use hcikit_firstboot::plan::SecretRef;
use std::collections::BTreeMap;
use std::fmt;

/// Placeholder written instead of a secret when rendering without `--reveal-secrets`.
pub const REDACTED: &str = "<redacted>";

#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValues {
    values: BTreeMap<String, Vec<u8>>,
}

impl SecretValues {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&mut self, id: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.values.insert(id.into(), value.into());
    }
    pub fn get(&self, r: &SecretRef) -> Option<&[u8]> {
        self.values.get(&r.id).map(Vec::as_slice)
    }
    pub fn get_id(&self, id: &str) -> Option<&[u8]> {
        self.values.get(id).map(Vec::as_slice)
    }
    /// Secret ids in sorted order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_ids_not_values() {
        let mut s = SecretValues::new();
        s.insert("smtp/relay/password", "hunter2");
        let d = format!("{s:?}");
        assert!(d.contains("smtp/relay/password") && !d.contains("hunter2"));
    }
}
