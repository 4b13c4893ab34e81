//! The programs in examples/ are built by `cargo test` (with the tests) and run here against a
//! private store and state root: each must succeed, print what it promises and leave nothing.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use husk_testing::images::{rootfs_tarball, state_left};
use husk_testing::{mounts_under, require_root, run_with_timeout, OutputExt, TempDir};

/// `target/<profile>/examples/<name>`, next to this test binary's `deps/` directory. `cargo
/// test` builds the examples with the tests; `cargo test --test examples` does not, so a missing
/// one is built here with the same cargo and profile.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary in target/<profile>/deps")
        .join("examples");
    let path = dir.join(name);
    if !path.is_file() {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if dir.parent().is_some_and(|p| p.ends_with("release")) {
            cargo.arg("--release");
        }
        let out = run_with_timeout(&mut cargo, Duration::from_secs(1200));
        assert!(
            out.status.success(),
            "cargo build --example {name}: {}",
            out.describe()
        );
    }
    assert!(path.is_file(), "example {} was not built", path.display());
    path
}

/// Runs example `name` with a fresh store and state root; its stdout.
fn run_example(name: &str) -> String {
    run_example_with(name, &[])
}

/// [`run_example`] with more arguments after the store and state root.
fn run_example_with(name: &str, extra: &[&str]) -> String {
    require_root();
    let scratch = TempDir::new(&format!("husk-example-{name}"));
    let state = scratch.path().join("state");
    let out = run_with_timeout(
        Command::new(example(name))
            .arg(rootfs_tarball())
            .arg(scratch.path().join("store"))
            .arg(&state)
            .args(extra),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{name}: {}", out.describe());
    let mounts = mounts_under(scratch.path());
    assert!(mounts.is_empty(), "{name} left mounts: {mounts:?}");
    let left = state_left(&state);
    assert!(left.is_empty(), "{name} left state: {left:?}");
    out.stdout_str()
}

#[test]
fn install_and_run() {
    let out = run_example("install_and_run");
    assert!(out.contains("container said: hello from husk\n"), "{out}");
    assert!(out.contains("container ended with exit code 0"), "{out}");
    assert!(out.contains("removed"), "{out}");
}

#[test]
fn execute_untrusted() {
    let out = run_example("execute_untrusted");
    assert!(out.contains("sum: 5050 (exit code Some(0)"), "{out}");
    assert!(
        out.contains("spinner: timed out true, signal Some(9)"),
        "{out}"
    );
    assert!(out.contains("host network: refused"), "{out}");
}

#[test]
fn long_lived_exec() {
    let out = run_example("long_lived_exec");
    let counts: Vec<u64> = out
        .lines()
        .filter_map(|l| {
            l.strip_prefix("round ")?
                .split("count is ")
                .nth(1)?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(counts.len(), 3, "{out}");
    // The main process kept counting between the execs.
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "{out}");
    assert!(out.contains("service ended with exit code 0"), "{out}");
}

#[test]
fn stream_files() {
    let out = run_example("stream_files");
    // What the container made from the input streamed in, read from the tar streamed out.
    assert!(out.contains("out out/fruit.txt: apple,fig,pear\n"), "{out}");
    assert!(out.contains("out out/veg.txt: kale,leek\n"), "{out}");
    assert!(out.contains("out out/lines: 5\n"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
}

#[test]
fn bench_execute() {
    let out = run_example_with("bench_execute", &["5"]);
    assert!(out.contains("execute p50 "), "{out}");
    assert!(out.contains(" n 5\n"), "{out}");
    assert!(out.contains("execute 20 concurrent "), "{out}");
}
