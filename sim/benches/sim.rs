//! `just bench-sim`: simulated makespan of the whole first boot (from "all peers up" to
//! HEALTH_OK and to done) against the critical path of the same command latencies,
//! for both scenarios, plus the real time one simulation takes.

use hcikit_firstboot::example;
use hcikit_sim::{self as sim, Latencies, Measure, SimConfig};
use std::time::Instant;

fn main() {
    println!(
        "{:<8} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7} {:>10}",
        "scenario",
        "sim→OK s",
        "crit→OK s",
        "ratio",
        "sim→done s",
        "crit→done s",
        "ratio",
        "real ms"
    );
    for (name, plan) in [
        ("lab", example::lab_plan()),
        ("minipc", example::minipc_plan()),
    ] {
        let cfg = SimConfig::default();
        let lat = Latencies::default();
        let t = Instant::now();
        let runs = 20;
        let mut r = None;
        for seed in 0..runs {
            r = Some(sim::simulate(
                &plan,
                &SimConfig {
                    seed,
                    ..cfg.clone()
                },
            ));
        }
        let real = t.elapsed().as_secs_f64() * 1000.0 / runs as f64;
        let r = r.expect("ran");
        assert!(r.all_done(), "{name}: {:?}", r.outcomes);
        let m = Measure::of(&plan, &r, &lat);
        let ok = m.to_health_ok_ms.expect("HEALTH_OK recorded") as f64 / 1000.0;
        let cok = m.critical_health_ok_ms as f64 / 1000.0;
        let done = m.to_done_ms as f64 / 1000.0;
        let cdone = m.critical_done_ms as f64 / 1000.0;
        println!(
            "{name:<8} {ok:>12.1} {cok:>12.1} {:>7.3} {done:>12.1} {cdone:>12.1} {:>7.3} {real:>10.1}",
            ok / cok,
            done / cdone
        );
    }
}
