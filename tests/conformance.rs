//! OCI runtime-spec conformance suite: one or more tests per MUST and SHOULD of the spec, run against any
//! runc-compatible runtime (`HUSK_TEST_RUNTIME`, default: this package's husk binary).
//!
//! This is a test target with its own `main` (`harness = false`): it prints one line per test (`ok NAME`,
//! `FAIL NAME: reason`, `skip NAME: reason`) and finally `N passed, N failed, N skipped`. It exits non-zero when a
//! test fails that was not expected to: for runc, the tests listed in `tests/conformance/runc-differences.txt`
//! may fail; for husk, every test listed in `tests/conformance/husk-expected-pass.txt` must pass.
//!
//! ```text
//! cargo test --test conformance -- [FILTER...] [--exact] [--list] [-j N] [--verbose] [--expect husk|runc|none]
//! ```

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

#[path = "conformance/mod.rs"]
mod suite;

use std::collections::BTreeMap;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use suite::support::{Ctx, Test};

/// Whose list of expectations applies to the failures of this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expectations {
    /// husk: the tests in husk-expected-pass.txt must pass; other failures are known gaps.
    Husk,
    /// runc: only the tests in runc-differences.txt may fail.
    Runc,
    /// Any other runtime: every failure counts.
    None,
}

struct Options {
    filters: Vec<String>,
    exact: bool,
    list: bool,
    jobs: usize,
    verbose: bool,
    expect: Option<Expectations>,
    runtime: Option<PathBuf>,
}

const USAGE: &str = "usage: conformance [FILTER...] [--exact] [--list] [-j N | --jobs N] [--verbose] \
[--expect husk|runc|none] [--runtime PATH]
  FILTER      run only tests whose name contains it (any of them); with --exact, equals it
  --list      print the test names and exit
  -j N        run N tests at a time (default 2)
  --verbose   print the whole failure message under each FAIL line
  --expect    whose expectation list applies (default: from the runtime binary's file name)
  --runtime   the runtime binary (default: $HUSK_TEST_RUNTIME, else target/*/husk)
The runtime and the rootfs come from HUSK_TEST_RUNTIME and HUSK_ROOTFS as in the other integration tests.";

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        filters: Vec::new(),
        exact: false,
        list: false,
        jobs: 2,
        verbose: std::env::var_os("CONFORMANCE_VERBOSE").is_some_and(|v| v == "1"),
        expect: None,
        runtime: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--exact" => options.exact = true,
            "--list" => options.list = true,
            "--verbose" | "-v" => options.verbose = true,
            "-j" | "--jobs" | "--test-threads" => {
                let text = value(&flag)?;
                options.jobs = text
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("{flag}: not a positive number: {text}"))?;
            }
            "--expect" => {
                options.expect = Some(match value("--expect")?.as_str() {
                    "husk" => Expectations::Husk,
                    "runc" => Expectations::Runc,
                    "none" => Expectations::None,
                    other => return Err(format!("--expect: unknown value {other:?}")),
                })
            }
            "--runtime" => options.runtime = Some(PathBuf::from(value("--runtime")?)),
            // Flags that `cargo test -- ...` may pass to every test binary; they mean nothing here.
            "--nocapture" | "--show-output" | "--quiet" | "-q" | "--include-ignored"
            | "--ignored" => {}
            "--color" | "--format" | "--logfile" | "--skip" => {
                value(&flag)?;
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            _ => options.filters.push(arg),
        }
    }
    Ok(options)
}

/// Test names in a list file: one per line; `#` starts a comment; text after the name (separated by whitespace)
/// is the reason.
fn read_list(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| match line.split_once(char::is_whitespace) {
            Some((name, reason)) => (name.to_owned(), reason.trim().to_owned()),
            None => (line.to_owned(), String::new()),
        })
        .collect()
}

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

thread_local! {
    static PANIC_MESSAGE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Keeps panic messages (the failures of tests) for the result line instead of printing them as they happen.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(panic with a non-string payload)".to_owned());
        let location = info
            .location()
            .map(|l| format!(" [{}:{}]", l.file(), l.line()))
            .unwrap_or_default();
        PANIC_MESSAGE.with(|slot| {
            let mut slot = slot.borrow_mut();
            // The first panic explains the failure; a second one (e.g. in a Drop during unwinding) is appended.
            match slot.as_mut() {
                None => *slot = Some(format!("{message}{location}")),
                Some(first) => first.push_str(&format!("\n(then: {message}{location})")),
            }
        });
    }));
}

fn run_one(test: &Test, ctx: &Ctx) -> Outcome {
    PANIC_MESSAGE.with(|slot| slot.borrow_mut().take());
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| (test.run)(ctx)));
    match result {
        Ok(Ok(())) => Outcome::Pass,
        Ok(Err(skip)) => Outcome::Skip(skip.0),
        Err(_) => Outcome::Fail(
            PANIC_MESSAGE
                .with(|slot| slot.borrow_mut().take())
                .unwrap_or_else(|| "panicked".to_owned()),
        ),
    }
}

/// The reason on one line, shortened: the full text is printed with --verbose.
fn one_line(text: &str) -> String {
    const LIMIT: usize = 400;
    let flat = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    if flat.chars().count() > LIMIT {
        let cut: String = flat.chars().take(LIMIT).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("conformance: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut tests = suite::all_tests();
    tests.retain(|t| {
        options.filters.is_empty()
            || options.filters.iter().any(|f| {
                if options.exact {
                    t.name == *f
                } else {
                    t.name.contains(f.as_str())
                }
            })
    });
    if options.list {
        for test in &tests {
            println!("{}", test.name);
        }
        return;
    }

    let binary = options
        .runtime
        .clone()
        .or_else(|| {
            std::env::var_os("HUSK_TEST_RUNTIME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_husk")));
    let ctx = match Ctx::new(binary) {
        Ok(ctx) => ctx,
        Err(message) => {
            eprintln!("conformance: cannot run: {message}");
            std::process::exit(1);
        }
    };
    let runtime_name = ctx
        .runtime_binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let expect = options.expect.unwrap_or(match runtime_name.as_str() {
        "husk" => Expectations::Husk,
        "runc" => Expectations::Runc,
        _ => Expectations::None,
    });
    let lists_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let runc_differences = read_list(&lists_dir.join("runc-differences.txt"));
    let husk_expected_pass = read_list(&lists_dir.join("husk-expected-pass.txt"));
    let all_names: Vec<String> = suite::all_tests().into_iter().map(|t| t.name).collect();
    for (list, file) in [
        (&runc_differences, "runc-differences.txt"),
        (&husk_expected_pass, "husk-expected-pass.txt"),
    ] {
        for name in list.keys() {
            if !all_names.contains(name) {
                eprintln!("conformance: warning: {file} names {name}, which is not a test");
            }
        }
    }

    println!(
        "conformance: {} tests against {} ({}), {} at a time, expectations: {:?}",
        tests.len(),
        ctx.runtime_binary.display(),
        ctx.runtime_version,
        options.jobs,
        expect
    );
    install_panic_hook();

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(String, Outcome)>> = Mutex::new(Vec::new());
    let print_lock = Mutex::new(());
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.min(tests.len().max(1)) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(test) = tests.get(index) else { break };
                let started = Instant::now();
                let outcome = run_one(test, &ctx);
                let elapsed = started.elapsed();
                let _guard = print_lock.lock().unwrap_or_else(|e| e.into_inner());
                let mut stdout = std::io::stdout().lock();
                let _ = match &outcome {
                    Outcome::Pass => writeln!(stdout, "ok {}", test.name),
                    Outcome::Skip(reason) => {
                        writeln!(stdout, "skip {}: {}", test.name, one_line(reason))
                    }
                    Outcome::Fail(reason) => {
                        let note = match expect {
                            Expectations::Runc => runc_differences
                                .get(&test.name)
                                .map(|why| format!(" (expected: runc difference: {why})")),
                            Expectations::Husk if !husk_expected_pass.contains_key(&test.name) => {
                                Some(" (not in husk-expected-pass.txt)".to_owned())
                            }
                            _ => None,
                        }
                        .unwrap_or_default();
                        let line =
                            writeln!(stdout, "FAIL {}: {}{note}", test.name, one_line(reason));
                        if options.verbose {
                            for l in reason.lines() {
                                let _ = writeln!(stdout, "    {l}");
                            }
                            let _ = writeln!(stdout, "    ({:.1}s)", elapsed.as_secs_f64());
                        }
                        line
                    }
                };
                let _ = stdout.flush();
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((test.name.clone(), outcome));
            });
        }
    });

    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut unexpected_failures = Vec::new();
    let mut unexpected_passes = Vec::new();
    for (name, outcome) in &results {
        match outcome {
            Outcome::Pass => {
                passed += 1;
                match expect {
                    Expectations::Husk if !husk_expected_pass.contains_key(name) => {
                        unexpected_passes
                            .push(format!("{name}: passes, add to husk-expected-pass.txt"))
                    }
                    Expectations::Runc if runc_differences.contains_key(name) => unexpected_passes
                        .push(format!(
                            "{name}: passes on runc, remove from runc-differences.txt"
                        )),
                    _ => {}
                }
            }
            Outcome::Skip(_) => skipped += 1,
            Outcome::Fail(_) => {
                failed += 1;
                let expected = match expect {
                    Expectations::Husk => !husk_expected_pass.contains_key(name),
                    Expectations::Runc => runc_differences.contains_key(name),
                    Expectations::None => false,
                };
                if !expected {
                    unexpected_failures.push(name.clone());
                }
            }
        }
    }
    unexpected_passes.sort();
    unexpected_failures.sort();
    for note in &unexpected_passes {
        println!("note: {note}");
    }
    for name in &unexpected_failures {
        let why = match expect {
            Expectations::Husk => "listed in husk-expected-pass.txt",
            Expectations::Runc => {
                "not listed in runc-differences.txt: a bug in the test or a runc change"
            }
            Expectations::None => "no expectation list for this runtime",
        };
        println!("unexpected failure: {name} ({why})");
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if !unexpected_failures.is_empty() {
        std::process::exit(1);
    }
}
