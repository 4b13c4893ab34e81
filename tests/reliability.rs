//! Reliability (issue 13): signals to a foreground `run`.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use husk_testing::{unique_id, wait_for, Bundle, OutputExt, Runtime};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// Generous: these tests must pass on a loaded machine.
const WAIT: Duration = Duration::from_secs(30);

/// A real-time signal sent to `husk run` reaches the container, and `run` lives on. It used to
/// panic there (nix's `SigSet::wait` has no `Signal` for it), leaving the container orphaned.
#[test]
fn real_time_signal_to_foreground_run_is_forwarded() {
    let rt = runtime();
    let rt_signal = libc::SIGRTMIN() + 2;
    let bundle = Bundle::new(&rt).with_shared_dir().sh(&format!(
        "trap 'echo rt >> /shared/got' {rt_signal}; trap 'exit 42' TERM; \
         echo ready > /shared/ready; while :; do sleep 0.05; done"
    ));
    let id = unique_id("rtsig");
    let _guard = rt.guard(&id);
    let mut run = rt.spawn([
        "run".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    assert!(
        wait_for(|| bundle.read_shared("ready").is_some(), WAIT),
        "container did not start"
    );
    run.signal(rt_signal);
    let got = wait_for(|| bundle.read_shared("got").is_some(), WAIT);
    let alive = run.try_wait().is_none();
    let (_, stderr) = run.output_so_far();
    assert!(
        got && alive,
        "signal {rt_signal} not forwarded (got {:?}, run alive: {alive})\n{stderr}",
        bundle.read_shared("got")
    );
    run.signal(libc::SIGTERM);
    let out = run.wait(WAIT);
    assert_eq!(out.status.code(), Some(42), "{}", out.describe());
}
