//! Issue 16, bug 5: a program that starts a thread before `husk::init_if_requested()`, as one
//! whose `main` runs inside an async runtime (`#[tokio::main]`) does. The container init is a
//! re-exec of the program, so it has threads too and cannot join or create namespaces (setns
//! and unshare fail with EINVAL, which names no cause). `create` must fail in one line that
//! says why and what to do, and leave no state.
//!
//! This test binary is that program (hence `harness = false`): run as the init, it makes the
//! mistake on purpose; run by cargo, it starts itself as the embedder and checks the error.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use husk_testing::{unique_id, Bundle, Runtime};

/// Set (to the state root, bundle and id) when this binary runs as the embedder.
const EMBEDDER: &str = "HUSK_THREADED_EMBEDDER";

fn main() {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        let _ = stopped.recv();
    });
    // Too late: the worker thread already exists.
    husk::init_if_requested();
    let code = match std::env::var(EMBEDDER) {
        Ok(args) => embedder(&args),
        Err(_) => {
            an_init_with_threads_says_why_it_cannot_start();
            println!("test an_init_with_threads_says_why_it_cannot_start ... ok");
            0
        }
    };
    drop(stop);
    let _ = worker.join();
    std::process::exit(code);
}

/// Creates a container through the library with this (threaded) binary as the init.
fn embedder(args: &str) -> i32 {
    let mut parts = args.split('\n');
    let (Some(root), Some(bundle), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        eprintln!("{EMBEDDER}: expected root, bundle and id on three lines");
        return 2;
    };
    match husk::Runtime::new(root).create(id, bundle.as_ref(), &Default::default()) {
        Ok(container) => {
            println!("created");
            let _ = container.delete(true);
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn an_init_with_threads_says_why_it_cannot_start() {
    let rt = Runtime::from_env(env!("CARGO_BIN_EXE_husk"));
    // A new user namespace: unshare(CLONE_NEWUSER) is what a threaded process may not do
    // (a mount namespace alone it may create).
    let bundle = Bundle::new(&rt)
        .args(["true"])
        .add_namespace("user", None)
        .uid_mapping(0, 0, 65536)
        .gid_mapping(0, 0, 65536);
    let root = rt.scratch_dir().join("threaded-root");
    let id = unique_id("threads");
    let out = std::process::Command::new(std::env::current_exe().expect("current exe"))
        .env(
            EMBEDDER,
            format!("{}\n{}\n{id}", root.display(), bundle.path().display()),
        )
        .output()
        .expect("run as the embedder");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "create succeeded: {err}");
    assert!(
        err.contains("threads") && err.contains("init_if_requested"),
        "the error does not say why: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(!root.join(&id).exists(), "state left behind");
}
