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

/// `husk::Command`: pipes, files, exit statuses, signals and a terminal with resize, all for
/// processes started through the library in a running container.
#[test]
fn command_handles_pipes_files_signals_and_terminals() {
    use std::io::{Read, Write};
    require_root();
    let cli = CliRuntime::with_binary(env!("CARGO_BIN_EXE_husk"));
    let bundle = Bundle::new(&cli).args(["sleep", "100"]);
    let rt = engine(&cli);
    let id = unique_id("cmd");
    let mut c = rt
        .create(&id, bundle.path(), &Default::default())
        .expect("create");
    c.start().expect("start");

    // Pipes both ways.
    let mut p = husk::Command::new("tr")
        .args(["a-z", "A-Z"])
        .stdin(husk::Stdio::Piped)
        .stdout(husk::Stdio::Piped)
        .spawn(&c)
        .expect("spawn tr");
    p.pipes().stdin.take().unwrap().write_all(b"hello").unwrap();
    let mut out = String::new();
    p.pipes()
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "HELLO");
    assert_eq!(p.wait().unwrap(), ExitStatus::Exited(0));

    // A file as stdout, env and cwd on top of the container's, another user.
    let dir = husk_testing::TempDir::new("husk-test-cmd");
    let file = std::fs::File::create(dir.join("out")).unwrap();
    let p = husk::Command::new("sh")
        .args(["-c", "echo $GREETING $(pwd) $(id -u):$(id -g); exit 7"])
        .env("GREETING", "hi")
        .cwd("/tmp")
        .user(1000, 1000)
        .stdout(husk::Stdio::Fd(file.into()))
        .spawn(&c)
        .expect("spawn sh");
    assert_eq!(p.wait().unwrap(), ExitStatus::Exited(7));
    assert_eq!(
        std::fs::read_to_string(dir.join("out")).unwrap(),
        "hi /tmp 1000:1000\n"
    );

    // A signal ends a process: its status says which.
    let p = husk::Command::new("sleep")
        .arg("100")
        .spawn(&c)
        .expect("spawn sleep");
    p.signal(Signal::SIGTERM).unwrap();
    assert_eq!(p.wait().unwrap(), ExitStatus::Signaled(libc::SIGTERM));

    // A terminal: the process sees a tty of the asked size, then of the new size.
    let p = husk::Command::new("sh")
        .args(["-c", "stty size; read line; stty size"])
        .tty(24, 80)
        .spawn(&c)
        .expect("spawn tty");
    let mut master =
        std::fs::File::from(p.console().expect("console").try_clone_to_owned().unwrap());
    let mut seen = String::new();
    let mut read_until = |master: &mut std::fs::File, want: &str| -> String {
        let mut chunk = [0u8; 256];
        while !seen.contains(want) {
            match master.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&chunk[..n])),
            }
        }
        seen.clone()
    };
    let first = read_until(&mut master, "24 80");
    assert!(first.contains("24 80"), "{first:?}");
    p.resize(30, 100).unwrap();
    master.write_all(b"\n").unwrap();
    let second = read_until(&mut master, "30 100");
    assert!(second.contains("30 100"), "{second:?}");
    assert_eq!(p.wait().unwrap(), ExitStatus::Exited(0));

    c.kill(Signal::SIGKILL, false).unwrap();
    c.wait().unwrap();
    rt.load(&id).unwrap().delete(true).unwrap();
}

/// The container's own process with piped streams: what it writes comes back to the caller.
#[test]
fn main_process_streams_can_be_pipes() {
    use std::io::{Read, Write};
    require_root();
    let cli = CliRuntime::with_binary(env!("CARGO_BIN_EXE_husk"));
    let bundle = Bundle::new(&cli).sh("read name; echo hello $name; echo oops >&2");
    let rt = engine(&cli);
    let opts = husk::CreateOptions {
        stdio: husk::StdioConfig {
            stdin: husk::Stdio::Piped,
            stdout: husk::Stdio::Piped,
            stderr: husk::Stdio::Piped,
        },
        ..Default::default()
    };
    let id = unique_id("pipes");
    let mut c = rt.create(&id, bundle.path(), &opts).expect("create");
    let mut stdin = c.pipes().stdin.take().expect("stdin pipe");
    let mut stdout = c.pipes().stdout.take().expect("stdout pipe");
    let mut stderr = c.pipes().stderr.take().expect("stderr pipe");
    c.start().expect("start");
    stdin.write_all(b"world\n").unwrap();
    drop(stdin);
    let (mut out, mut err) = (String::new(), String::new());
    stdout.read_to_string(&mut out).unwrap();
    stderr.read_to_string(&mut err).unwrap();
    assert_eq!(out, "hello world\n");
    assert_eq!(err, "oops\n");
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    rt.load(&id).unwrap().delete(false).unwrap();
}

/// One process creates containers with two seccomp profiles that differ only in an errno, in
/// turns: the runtime keeps built programs per profile (src/seccomp_cache.rs), and each container
/// must still get its own profile's errno, seen from inside.
#[test]
fn containers_of_one_process_each_get_their_own_seccomp_profile() {
    use std::io::Read;
    require_root();
    let cli = CliRuntime::with_binary(env!("CARGO_BIN_EXE_husk"));
    let rt = engine(&cli);
    let opts = husk::CreateOptions {
        stdio: husk::StdioConfig {
            stdin: husk::Stdio::Null,
            stdout: husk::Stdio::Piped,
            stderr: husk::Stdio::Piped,
        },
        ..Default::default()
    };
    let mkdir_error = |errno: u32| -> String {
        let bundle = Bundle::new(&cli)
            .sh("mkdir /tmp/denied-by-seccomp 2>&1; echo done")
            .set(
                "/linux/seccomp",
                serde_json::json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                  "errnoRet": errno}]
                }),
            );
        let id = unique_id("seccomp-cache");
        let mut c = rt.create(&id, bundle.path(), &opts).expect("create");
        let mut stdout = c.pipes().stdout.take().expect("stdout pipe");
        c.start().expect("start");
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0), "{out}");
        rt.load(&id).unwrap().delete(false).unwrap();
        out
    };
    for _ in 0..2 {
        let eperm = mkdir_error(1);
        assert!(
            eperm.contains("Operation not permitted"),
            "errno 1: {eperm}"
        );
        let enospc = mkdir_error(28);
        assert!(
            enospc.contains("No space left on device"),
            "errno 28: {enospc}"
        );
    }
}
