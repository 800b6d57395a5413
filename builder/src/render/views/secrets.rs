//! Secret values as templates see them: each rendered or redacted.

use crate::error::InputError;
use crate::spec::secrets::{SecretValues, REDACTED};
use anyhow::Result;
use hcikit_firstboot::plan::*;
use serde::Serialize;

/// The only way secret values reach templates: each rendered or [`REDACTED`].
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct SecretView {
    /// SMTP target passwords (`priv/notifications.cfg`), targets without one left out.
    smtp: Vec<NamedSecret>,
    /// Realm secrets (OpenID client key, LDAP/AD bind password).
    pub(crate) realms: Vec<NamedSecret>,
}

#[derive(Serialize)]
pub(crate) struct NamedSecret {
    pub(crate) name: String,
    pub(crate) value: String,
}

impl SecretView {
    /// Every value the view holds (placeholders when redacted).
    pub(crate) fn values(&self) -> impl Iterator<Item = &str> {
        self.smtp
            .iter()
            .chain(&self.realms)
            .map(|s| s.value.as_str())
    }

    pub(crate) fn new(plan: &Plan, values: &SecretValues, reveal: bool) -> Result<Self> {
        let get = |name: &str, r: &SecretRef| -> Result<NamedSecret> {
            Ok(NamedSecret {
                name: name.into(),
                value: if reveal {
                    secret_text(values, r)?
                } else {
                    REDACTED.into()
                },
            })
        };
        Ok(SecretView {
            smtp: plan
                .notifications
                .smtp
                .iter()
                .filter_map(|s| s.password.as_ref().map(|r| get(&s.name, r)))
                .collect::<Result<_>>()?,
            realms: plan
                .realms
                .iter()
                .filter_map(|x| x.secret.as_ref().map(|r| get(&x.name, r)))
                .collect::<Result<_>>()?,
        })
    }
}

/// A secret as one line of text: one trailing newline dropped, no other line break.
fn secret_text(values: &SecretValues, r: &SecretRef) -> Result<String> {
    let raw = values
        .get(r)
        .ok_or_else(|| InputError::new(format!("secret {} has no value", r.id)))?;
    let text = std::str::from_utf8(raw)
        .map_err(|_| InputError::new(format!("secret {} is not UTF-8 text", r.id)))?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if text.contains(['\n', '\r']) {
        return Err(InputError::new(format!(
            "secret {} contains a line break; it must be a single line",
            r.id
        ))
        .into());
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_text_drops_one_newline_and_rejects_inner_ones() {
        let mut v = SecretValues::new();
        v.insert("a", "pw\n");
        v.insert("b", "p\nw");
        assert_eq!(secret_text(&v, &SecretRef::new("a")).unwrap(), "pw");
        assert!(secret_text(&v, &SecretRef::new("b")).is_err());
        assert!(secret_text(&v, &SecretRef::new("c")).is_err());
    }
}
