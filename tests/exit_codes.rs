//! Exit status of `run` in the foreground: the container's exit code, 128+N for a container killed by signal N, and
//! signals sent to the runtime forwarded to the container.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use husk_testing::{unique_id, wait_for, Bundle, OutputExt, Runtime};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn run_exits_with_container_exit_code() {
    let rt = runtime();
    for code in [0, 1, 3, 42, 126, 255] {
        let bundle = Bundle::new(&rt).sh(&format!("exit {code}"));
        let out = rt.run_bundle(&bundle);
        assert_eq!(out.status.code(), Some(code), "{}", out.describe());
    }
}

#[test]
fn run_of_missing_executable_fails_and_leaves_nothing() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).args(["/no/such/program"]);
    let id = unique_id("noexec");
    let _guard = rt.guard(&id);
    let out = rt.run([
        "run".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_str().contains("/no/such/program"),
        "error should name the program:\n{}",
        out.describe()
    );
    assert!(rt.list_ids().is_empty(), "{:?}", rt.list_ids());
}

#[test]
fn container_killed_from_outside_gives_128_plus_signal() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .sh("echo ready > /shared/ready; exec sleep 1000");
    let id = unique_id("sigkill");
    let _guard = rt.guard(&id);
    let run = rt.spawn([
        "run".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    assert!(
        wait_for(|| bundle.read_shared("ready").is_some(), WAIT),
        "container did not start"
    );
    rt.run_ok(["kill", &id, "KILL"]);
    let out = run.wait(WAIT);
    assert_eq!(out.status.code(), Some(128 + 9), "{}", out.describe());
}

#[test]
fn container_killing_itself_gives_128_plus_signal() {
    let rt = runtime();
    // Outside a pid namespace the shell is not an init process, so it can die from its own signals.
    for (signal, number) in [("USR1", 10), ("TERM", 15), ("SEGV", 11)] {
        let bundle = Bundle::new(&rt)
            .remove_namespace("pid")
            .sh(&format!("kill -{signal} $$; sleep 5"));
        let out = rt.run_bundle(&bundle);
        assert_eq!(
            out.status.code(),
            Some(128 + number),
            "SIG{signal}: {}",
            out.describe()
        );
    }
}

#[test]
fn signals_to_foreground_runtime_are_forwarded() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).with_shared_dir().sh(
        "trap 'echo hup >> /shared/got' HUP; trap 'echo usr2 >> /shared/got' USR2; trap 'exit 42' TERM; \
         echo ready > /shared/ready; while :; do sleep 0.05; done",
    );
    let id = unique_id("fwd");
    let _guard = rt.guard(&id);
    let run = rt.spawn([
        "run".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    assert!(
        wait_for(|| bundle.read_shared("ready").is_some(), WAIT),
        "container did not start"
    );
    for (signal, name, lines) in [(libc::SIGHUP, "hup", 1), (libc::SIGUSR2, "usr2", 2)] {
        run.signal(signal);
        let got = wait_for(
            || {
                bundle
                    .read_shared("got")
                    .is_some_and(|s| s.lines().count() == lines)
            },
            WAIT,
        );
        assert!(got, "{name} not forwarded: {:?}", bundle.read_shared("got"));
    }
    assert_eq!(bundle.read_shared("got").unwrap(), "hup\nusr2\n");
    run.signal(libc::SIGTERM);
    let out = run.wait(WAIT);
    assert_eq!(
        out.status.code(),
        Some(42),
        "SIGTERM not forwarded or exit code lost\n{}",
        out.describe()
    );
}
