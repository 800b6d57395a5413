//! No secret (SMTP password, bootstrap private key) in any log line, command log, state
//! file or status output. Alone in its binary: it installs the global tracing subscriber,
//! which must not race with other tests' callsite registration.

use hcikit_firstboot::example;
use hcikit_sim::{self as sim, FailKind, FailRule, Faults, SimConfig, SimReport};

#[test]
fn no_secret_in_logs_commands_states_or_status() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let w = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || w.clone())
        .finish();
    let plan = example::lab_plan();
    // With failures, so error paths (which quote command output) are exercised too.
    let f = Faults {
        fail: vec![FailRule {
            node: None,
            command: "pvesh create /cluster/notifications/endpoints/smtp".into(),
            times: 0,
            kind: FailKind::TaskError("x".into()),
        }],
        random_kills: 2,
        restart_delay_secs: 10,
        ..Faults::default()
    };
    // Global, so the agents' threads log here whatever else runs in parallel (their
    // lines land here too, which only widens the check).
    tracing::subscriber::set_global_default(sub).expect("only this test sets a subscriber");
    let r = sim::simulate(
        &plan,
        &SimConfig {
            seed: 11,
            faults: f,
            ..SimConfig::default()
        },
    );
    assert!(r.all_done(), "{:?}", r.outcomes);
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("running step"),
        "tracing captured the agents' logs: {}",
        &logs[..logs.len().min(500)]
    );
    let mut all = logs;
    for e in &r.log {
        all.push_str(&format!("{e:?}\n"));
    }
    for e in &r.events {
        all.push_str(&e.text);
    }
    for s in r.states.values() {
        all.push_str(s);
        let st: hcikit_firstboot::state::State = serde_json::from_str(s).unwrap();
        all.push_str(&hcikit_firstboot::status::render(&st, false));
        all.push_str(&hcikit_firstboot::status::render(&st, true));
    }
    all.push_str(&r.world.summary().to_string());
    assert!(
        all.contains("<stdin: password=<redacted>>"),
        "the password argument was redacted"
    );
    for secret in SimReport::secrets() {
        assert!(!all.contains(secret), "secret leaked");
    }
}
