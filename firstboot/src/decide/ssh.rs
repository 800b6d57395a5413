//! The bootstrap ssh client block of joiners and the steps that install and remove the
//! bootstrap key.

use super::*;

/// The ssh client block for the founder at `ip`: the bootstrap key (and root's own key,
/// which `ssh-copy-id` copies), host keys only from the pinned file.
pub fn ssh_block(ip: &str) -> String {
    format!(
        "{SSH_BLOCK_BEGIN}\nHost {ip}\n    User root\n    IdentityFile {BOOTSTRAP_KEY}\n    IdentityFile /root/.ssh/id_rsa\n    \
         UserKnownHostsFile {KNOWN_HOSTS}\n    StrictHostKeyChecking yes\n    BatchMode yes\n{SSH_BLOCK_END}\n"
    )
}

/// `config` without the hcikit block.
pub fn without_ssh_block(config: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in config.lines() {
        if line.trim() == SSH_BLOCK_BEGIN {
            inside = true;
        } else if line.trim() == SSH_BLOCK_END {
            inside = false;
        } else if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `config` with the hcikit block for `ip` first (ssh uses the first match).
pub fn with_ssh_block(config: &str, ip: &str) -> String {
    format!("{}{}", ssh_block(ip), without_ssh_block(config))
}

pub fn ssh_config_has_block(config: &str, ip: &str) -> bool {
    config.contains(&ssh_block(ip))
}

impl Ctx<'_> {
    pub(super) fn eval_ssh(&self, step: &Step) -> Eval {
        let obs = self.obs;
        match step {
            Step::SshConfig => {
                if self
                    .member_view()
                    .is_some_and(|c| c.member(&self.me.name).is_some())
                {
                    return Eval::Satisfied;
                }
                let Some(current) = &obs.ssh_config else {
                    return unobserved("root's ssh config");
                };
                let ip = &self.founder().primary_ip;
                if ssh_config_has_block(current, ip) {
                    Eval::Satisfied
                } else {
                    Eval::Ready(Action {
                        step: step.clone(),
                        kind: ActionKind::WriteSshConfig(with_ssh_block(current, ip)),
                        verify: Verify::Step,
                        verify_secs: 5,
                    })
                }
            }
            Step::RevokeBootstrap => match obs.bootstrap_authorized {
                None => unobserved("the cluster's authorized_keys"),
                Some(false) if !obs.bootstrap_key_present => Eval::Satisfied,
                Some(_) => Eval::Ready(Action {
                    step: step.clone(),
                    kind: ActionKind::RevokeBootstrap,
                    verify: Verify::Step,
                    verify_secs: 10,
                }),
            },
            Step::DropBootstrapKey => {
                let Some(cfg) = &obs.ssh_config else {
                    return unobserved("root's ssh config");
                };
                if obs.bootstrap_key_present || cfg.contains(SSH_BLOCK_BEGIN) {
                    Eval::Ready(Action {
                        step: step.clone(),
                        kind: ActionKind::DropBootstrapKey,
                        verify: Verify::Step,
                        verify_secs: 10,
                    })
                } else {
                    Eval::Satisfied
                }
            }
            _ => unreachable!("{} is not a ssh step", step.id()),
        }
    }
}
