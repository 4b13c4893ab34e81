//! The engine used as a library: `husk::Runtime` and `husk::Container`, no CLI in between
//! (the husk binary serves only as the container init).

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use husk::oci_spec::runtime::Process;
use husk::{ExecOptions, ExitStatus, Status};
use husk_testing::{require_root, unique_id, wait_for, Bundle, Runtime as CliRuntime};
use nix::sys::signal::Signal;
use std::time::Duration;

fn engine(cli: &CliRuntime) -> husk::Runtime {
    husk::Runtime::new(cli.scratch_dir().join("lib-root"))
        .with_init_binary(env!("CARGO_BIN_EXE_husk"))
}

#[test]
fn create_start_wait_delete_through_the_library() {
    require_root();
    let cli = CliRuntime::with_binary(env!("CARGO_BIN_EXE_husk"));
    let bundle = Bundle::new(&cli)
        .with_shared_dir()
        .sh("echo $$ > /shared/pid; trap 'exit 42' TERM; echo ready > /shared/ready; while true; do sleep 0.05; done");
    let rt = engine(&cli);
    let id = unique_id("lib");
    let mut c = rt
        .create(&id, bundle.path(), &Default::default())
        .expect("create");
    assert_eq!(c.id(), id);
    assert_eq!(c.status(), Status::Created);
    let pid = c.pid().expect("init pid");
    assert_eq!(c.state().pid, pid);
    assert_eq!(c.state().bundle, bundle.path());

    c.start().expect("start");
    assert!(wait_for(
        || bundle.read_shared("ready").is_some(),
        Duration::from_secs(10)
    ));
    let c = rt.load(&id).expect("load");
    assert_eq!(c.status(), Status::Running);
    // Inside its pid namespace the process is 1; from here it is the init's pid.
    assert_eq!(bundle.read_shared("pid").unwrap().trim(), "1");
    assert!(c.pids().expect("pids").contains(&pid));
    assert!(rt.list().expect("list").iter().any(|x| x.id() == id));

    // A process started inside, through the library, reports its own exit status.
    let mut p = Process::default();
    p.set_args(Some(vec!["sh".into(), "-c".into(), "exit 3".into()]));
    p.set_env(Some(vec!["PATH=/bin".into()]));
    let proc = c.exec(&p, &ExecOptions::default()).expect("exec");
    assert_eq!(proc.wait().expect("wait exec"), ExitStatus::Exited(3));

    c.kill(Signal::SIGTERM, false).expect("signal");
    // This test process created the container, so the init is its child: the status is known.
    assert_eq!(c.wait().expect("wait"), ExitStatus::Exited(42));
    let c = rt.load(&id).expect("load after exit");
    assert_eq!(c.status(), Status::Stopped);
    c.delete(false).expect("delete");
    assert!(matches!(rt.load(&id), Err(husk::Error::NotFound(_))));
}

#[test]
fn library_errors_are_typed() {
    require_root();
    let cli = CliRuntime::with_binary(env!("CARGO_BIN_EXE_husk"));
    let rt = engine(&cli);
    let bundle = Bundle::new(&cli).args(["/no/such/program"]);
    let err = rt
        .create(&unique_id("lib"), bundle.path(), &Default::default())
        .unwrap_err();
    assert!(matches!(err, husk::Error::Init(_)), "{err:?}");
    assert!(err.to_string().contains("/no/such/program"), "{err}");
    assert!(rt.list().unwrap().is_empty(), "a failed create left state");

    let err = rt
        .create("bad/id", bundle.path(), &Default::default())
        .unwrap_err();
    assert!(matches!(err, husk::Error::InvalidId { .. }), "{err:?}");

    // An errno from the init survives the process boundary.
    let bundle = Bundle::new(&cli)
        .sh("true")
        .sysctl("net.ipv4.no_such_knob", "1");
    let err = rt
        .create(&unique_id("lib"), bundle.path(), &Default::default())
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
    assert!(err.to_string().contains("net.ipv4.no_such_knob"), "{err}");
}
