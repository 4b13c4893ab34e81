//! husk-hotpath traces real processes: it runs itself (an unstripped binary with known
//! functions) under single-stepping, directly and from a shell that signals itself.
//! Needs ptrace of own children (root or the same user); each test takes some seconds.
// Test scaffolding writes its own temp files, not container state: outside husk::hostfs on purpose.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const HOTPATH: &str = env!("CARGO_BIN_EXE_husk-hotpath");

/// Runs husk-hotpath on `command` with itself as the traced binary; fails the test on a hang.
fn trace(out: &Path, command: &[&str]) -> Output {
    let mut child = Command::new(HOTPATH)
        .args(["--binary", HOTPATH, "--out"])
        .arg(out)
        .arg("--")
        .args(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start husk-hotpath");
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "husk-hotpath hung on {command:?}; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn out_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("husk-hotpath-{name}-{}.txt", std::process::id()))
}

fn read_list(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("the output list");
    std::fs::remove_file(path).unwrap();
    text.lines().map(str::to_owned).collect()
}

fn position(list: &[String], key: &str) -> usize {
    list.iter()
        .position(|l| l == key)
        .unwrap_or_else(|| panic!("{key} not in the list: {list:?}"))
}

#[test]
fn functions_in_order_of_first_execution() {
    let out = out_file("direct");
    let output = trace(&out, &[HOTPATH, "--help"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("usage: husk-hotpath"),
        "the traced program's own output passes through"
    );
    let list = read_list(&out);

    // The ELF entry point runs first; then the C main, then Rust's main.
    assert_eq!(list[0], "_start", "{list:?}");
    let c_main = position(&list, "main");
    let rust_main = rust_main_position(&list);
    assert!(c_main < rust_main, "{list:?}");
    let mut unique = list.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), list.len(), "duplicate lines");
    // Names are exactly the binary's symbols, Rust hash included.
    let nm = Command::new("nm")
        .args(["--defined-only", HOTPATH])
        .output()
        .unwrap();
    let defined: std::collections::HashSet<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    assert!(!defined.is_empty(), "nm listed no symbols of {HOTPATH}");
    for name in &list {
        assert!(
            defined.contains(name),
            "{name} is not a symbol of {HOTPATH}"
        );
    }
    // Not traced: functions that --help does not reach.
    assert!(
        !list.iter().any(|l| l.contains("4tracer5trace")),
        "{list:?}"
    );
    for figure in [
        "steps in 1 traced",
        "1 exec'd images mapped",
        "pages touched",
    ] {
        assert!(stderr.contains(figure), "{figure:?} missing from: {stderr}");
    }
}

/// The tree is followed through fork and exec; signals the program sends itself arrive (a
/// handled one, a real-time one, a stop, a SIGTRAP that kills it); its exit status comes back.
#[test]
fn process_tree_signals_and_exit_status() {
    let out = out_file("shell");
    let script = r#"
        "$0" --help >/dev/null || exit 90
        trap 'echo got-usr2' USR2
        kill -USR2 $$
        trap 'echo got-rt' 40
        kill -40 $$
        kill -STOP $$
        echo after-stop
        kill -TRAP $$
        echo not-reached
    "#;
    let output = trace(&out, &["sh", "-c", script, HOTPATH]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout, "got-usr2\ngot-rt\nafter-stop\n", "{stderr}");
    // Killed by SIGTRAP: 128 + 5.
    assert_eq!(output.status.code(), Some(133), "{stderr}");
    assert!(stderr.contains("exited with status 133"), "{stderr}");
    // sh and its child; the child exec'd the traced binary.
    assert!(stderr.contains("in 2 traced processes"), "{stderr}");
    assert!(stderr.contains("1 exec'd images mapped"), "{stderr}");
    let list = read_list(&out);
    assert_eq!(list[0], "_start", "{list:?}");
    rust_main_position(&list);
}

/// A stripped binary is traced with the symbols its link kept (`nm -S` output), as husk's is.
#[test]
fn stripped_binary_with_a_symbols_file() {
    let stripped = stripped_copy("stripped-with-symbols");
    let symbols = out_file("symbols");
    let out = out_file("stripped-list");
    let nm = Command::new("nm")
        .args(["--defined-only", "-S", HOTPATH])
        .output()
        .unwrap();
    assert!(nm.status.success());
    std::fs::write(&symbols, &nm.stdout).unwrap();
    let stripped_str = stripped.to_str().unwrap();
    let output = Command::new(HOTPATH)
        .args([
            "--binary",
            stripped_str,
            "--symbols",
            symbols.to_str().unwrap(),
            "--out",
        ])
        .arg(&out)
        .args(["--", stripped_str, "--help"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    std::fs::remove_file(&stripped).unwrap();
    std::fs::remove_file(&symbols).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let list = read_list(&out);
    assert_eq!(list[0], "_start", "{list:?}");
    rust_main_position(&list);
}

/// A copy of this tool's binary without symbols, in the temp dir.
fn stripped_copy(name: &str) -> PathBuf {
    let stripped = out_file(name);
    let status = Command::new("objcopy")
        .arg("--strip-all")
        .arg(HOTPATH)
        .arg(&stripped)
        .status()
        .expect("objcopy (binutils)");
    assert!(status.success(), "objcopy --strip-all failed");
    stripped
}

fn rust_main_position(list: &[String]) -> usize {
    list.iter()
        .position(|l| l.starts_with("_ZN12husk_hotpath4main17h"))
        .unwrap_or_else(|| panic!("husk_hotpath::main not in the list: {list:?}"))
}

#[test]
fn refuses_a_binary_without_symbols() {
    let stripped = stripped_copy("stripped");
    let output = Command::new(HOTPATH)
        .arg("--binary")
        .arg(&stripped)
        .args(["--out", "/dev/null", "--", "true"])
        .output()
        .unwrap();
    std::fs::remove_file(&stripped).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no function symbols"), "{stderr}");
    assert!(stderr.contains("unstripped"), "{stderr}");
}
