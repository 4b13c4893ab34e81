//! Hostile or careless input to the host side of the runtime: another local user after a
//! container's secrets, ids that mean "no change" to the kernel, arguments that are not UTF-8,
//! a config.json that is a fifo, and device nodes a config lists without granting access to
//! them. Each test creates real containers or runs the real command line, and checks the host
//! side's answer: refused with a one-line error naming what is wrong and nothing left behind,
//! or the attack failing.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use husk_testing::{
    run_with_timeout, unique_id, wait_for, Bundle, ContainerGuard, OutputExt, Runtime, Spawned,
    TempDir,
};
use serde_json::{json, Value};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(20);

/// The unprivileged user every Linux system has.
const NOBODY: u32 = 65534;

/// `cat` of `paths`, run as the user nobody (no supplementary groups: std drops them).
fn cat_as_nobody(paths: &[&Path]) -> Output {
    let mut cmd = Command::new("cat");
    cmd.args(paths).uid(NOBODY).gid(NOBODY);
    run_with_timeout(&mut cmd, WAIT)
}

/// A refusal as the command line should give it: a non-zero exit (not a crash), and one line
/// on stderr, which is returned.
fn assert_one_line_error(out: &Output, what: &str) -> String {
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "{what}: expected a plain failure, got {}\n{}",
        out.status,
        out.describe()
    );
    let stderr = out.stderr_str();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{what}: crashed\n{}",
        out.describe()
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{what}: not a one-line error\n{}",
        out.describe()
    );
    stderr.trim().to_string()
}

/// Nothing of a refused container is left: no container listed, no state directory.
fn assert_nothing_left(rt: &Runtime, what: &str) {
    assert_eq!(
        rt.list_ids(),
        Vec::<String>::new(),
        "{what}: containers left"
    );
    assert_eq!(
        rt.state_dir_entries(),
        Vec::<String>::new(),
        "{what}: state left in {}",
        rt.root().display()
    );
}

/// A running container whose environment carries a secret: what another local user would be
/// after.
fn container_with_secret<'rt>(rt: &'rt Runtime, secret: &str) -> (Bundle, ContainerGuard<'rt>) {
    let bundle = Bundle::new(rt)
        .add_env(&format!("DB_PASSWORD={secret}"))
        .args(["sleep", "1000"]);
    let c = rt.create(&bundle);
    c.start();
    assert_eq!(c.status(), "running");
    (bundle, c)
}

/// The attack of issue 10: an unprivileged user finds the container's id (in
/// /proc/<pid>/cgroup, say) and reads the config and state the runtime keeps, env and all.
/// `rt` is only asked whether it is runc, which keeps no copy of the env.
fn assert_secret_out_of_reach(rt: &Runtime, root: &Path, id: &str, secret: &str) {
    let dir = root.join(id);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        rt.is_runc()
            || files.iter().any(|f| std::fs::read_to_string(f)
                .unwrap_or_default()
                .contains(secret)),
        "the secret is in none of {files:?}: the test checks nothing"
    );
    for file in &files {
        let out = cat_as_nobody(&[file]);
        assert!(
            !out.status.success() && !out.stdout_str().contains(secret),
            "user nobody read {}\n{}",
            file.display(),
            out.describe()
        );
        let mode = std::fs::metadata(file).unwrap().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", file.display());
    }
}

#[test]
fn container_secrets_are_unreadable_by_other_users() {
    let rt = runtime();
    // The harness made the state root before the runtime ran, with mode 0755: an existing
    // root with a loose mode, as an older husk (0711) or an admin's mkdir leaves it.
    assert_eq!(std::fs::metadata(rt.root()).unwrap().mode() & 0o777, 0o755);
    let secret = unique_id("hunter2");
    let (_bundle, c) = container_with_secret(&rt, &secret);
    assert_secret_out_of_reach(&rt, rt.root(), c.id(), &secret);
    let listing = Command::new("ls")
        .arg(rt.root())
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    if rt.is_runc() {
        // runc 1.1.5 makes a new root 0700 but leaves an existing one as it is; its container
        // directories are 0711 and the files in them 0600.
        return;
    }
    assert!(
        !listing.status.success(),
        "user nobody listed the state root: {}",
        listing.stdout_str()
    );
    for dir in [rt.root().to_path_buf(), rt.root().join(c.id())] {
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{} has mode {mode:o}", dir.display());
    }
}

/// A `--root` that also holds files of others (a shared directory named by mistake) keeps its
/// mode, so other users are not locked out of it; the containers' own state stays private.
#[test]
fn shared_directory_as_root_keeps_its_mode_and_secrets_stay_private() {
    let rt = runtime();
    let scratch = TempDir::new("husk-test-shared-root");
    let root = scratch.join("shared");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(root.join("someone-elses-file"), "hello").unwrap();
    let secret = unique_id("hunter2");
    let bundle = Bundle::new(&rt)
        .add_env(&format!("DB_PASSWORD={secret}"))
        .args(["sleep", "1000"]);
    let id = unique_id("shared");
    let cmd = |args: &[&OsStr]| {
        let mut cmd = rt.bare_cmd([OsStr::new("--root"), root.as_os_str()]);
        cmd.args(args);
        run_with_timeout(&mut cmd, WAIT)
    };
    let out = cmd(&[
        "run".as_ref(),
        "-d".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    let deleted = || cmd(&["delete".as_ref(), "--force".as_ref(), id.as_ref()]);
    if !out.status.success() {
        deleted();
        panic!("run -d failed\n{}", out.describe());
    }
    let mode = std::fs::metadata(&root).unwrap().mode() & 0o7777;
    let result = std::panic::catch_unwind(|| {
        assert_secret_out_of_reach(&rt, &root, &id, &secret);
    });
    let out = deleted();
    assert!(out.status.success(), "{}", out.describe());
    result.unwrap();
    assert_eq!(mode, 0o755, "the shared directory's mode was changed");
}

#[test]
fn uid_or_gid_minus_one_is_refused_at_create() {
    let rt = runtime();
    for (user, field) in [
        (json!({"uid": 4294967295u32, "gid": 0}), "process.user.uid"),
        (json!({"uid": 0, "gid": 4294967295u32}), "process.user.gid"),
        (
            json!({"uid": 0, "gid": 0, "additionalGids": [10, 4294967295u32]}),
            "process.user.additionalGids[1]",
        ),
    ] {
        let bundle = Bundle::new(&rt)
            .set("/process/user", user.clone())
            .args(["id"]);
        let id = unique_id("minus-one");
        let _guard = rt.guard(&id);
        let out = rt.run([
            OsStr::new("create"),
            OsStr::new("--bundle"),
            bundle.path().as_os_str(),
            OsStr::new(&id),
        ]);
        let error = assert_one_line_error(&out, &format!("create with user {user}"));
        if !rt.is_runc() {
            // runc 1.1.5: "uids and gids must be in range 0-2147483647", no field named.
            assert!(error.contains(field), "{field} not named: {error}");
        }
        assert_nothing_left(&rt, &format!("create with user {user}"));
    }
}

#[test]
fn uid_or_gid_minus_one_is_refused_by_exec() {
    let rt = runtime();
    let (bundle, c) = container_with_secret(&rt, "unused");
    let process_json = bundle.path().join("process-minus-one.json");
    let mut process = bundle.config()["process"].clone();
    process["args"] = json!(["id"]);
    process["user"] = json!({"uid": 4294967295u32, "gid": 0});
    std::fs::write(&process_json, process.to_string()).unwrap();
    let process_arg = process_json.to_str().unwrap();
    for (args, field) in [
        (vec!["--user", "4294967295"], "--user"),
        (vec!["--user", "0:4294967295"], "--user"),
        (vec!["--additional-gids", "4294967295"], "--additional-gids"),
        (vec!["--process", process_arg], "process.user.uid"),
    ] {
        let mut full = vec!["exec"];
        full.extend(&args);
        full.push(c.id());
        if !args.contains(&"--process") {
            full.extend(["id", "-u"]);
        }
        let out = rt.run(&full);
        let error = assert_one_line_error(&out, &format!("{full:?}"));
        assert!(!out.stdout_str().contains("uid="), "{}", out.describe());
        if !rt.is_runc() {
            assert!(error.contains(field), "{field} not named: {error}");
        }
    }
    assert_eq!(c.status(), "running");
}

fn non_utf8(prefix: &str) -> OsString {
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.extend_from_slice(b"\xff\xfe");
    OsStr::from_bytes(&bytes).to_os_string()
}

#[test]
fn non_utf8_ids_and_arguments_are_refused_in_one_line() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).args(["sleep", "1000"]);
    let bad_id = non_utf8("c");
    let bundle_path = bundle.path().as_os_str();
    let commands: Vec<Vec<&OsStr>> = vec![
        vec!["create".as_ref(), "--bundle".as_ref(), bundle_path, &bad_id],
        vec!["run".as_ref(), "--bundle".as_ref(), bundle_path, &bad_id],
        vec!["start".as_ref(), &bad_id],
        vec!["state".as_ref(), &bad_id],
        vec!["kill".as_ref(), &bad_id, "KILL".as_ref()],
        vec!["delete".as_ref(), "--force".as_ref(), &bad_id],
        vec!["pause".as_ref(), &bad_id],
        vec!["resume".as_ref(), &bad_id],
        vec!["ps".as_ref(), &bad_id],
        vec!["events".as_ref(), "--stats".as_ref(), &bad_id],
        vec![
            "update".as_ref(),
            "--pids-limit".as_ref(),
            "10".as_ref(),
            &bad_id,
        ],
        vec!["exec".as_ref(), &bad_id, "true".as_ref()],
    ];
    for args in &commands {
        let out = rt.run(args);
        let error = assert_one_line_error(&out, &format!("{args:?}"));
        if !rt.is_runc() {
            assert!(
                error.contains("xFF") && error.contains("xFE"),
                "argument not named: {error}"
            );
        }
    }
    assert_nothing_left(&rt, "commands with a non-UTF-8 id");

    // A path is bytes: a bundle reached through a non-UTF-8 name works.
    let scratch = TempDir::new("husk-test-non-utf8");
    let link = scratch.path().join(non_utf8("bundle"));
    std::os::unix::fs::symlink(bundle.path(), &link).unwrap();
    let id = unique_id("nonutf8");
    let c = rt.guard(&id);
    rt.run_ok([
        OsStr::new("run"),
        OsStr::new("-d"),
        OsStr::new("--bundle"),
        link.as_os_str(),
        OsStr::new(&id),
    ]);
    assert_eq!(c.status(), "running");

    // An argument for the container's process. runc passes the bytes on; husk refuses them in
    // one line. Neither may crash, and the container lives on.
    let out = rt.run([
        OsStr::new("exec"),
        OsStr::new(&id),
        OsStr::new("echo"),
        &non_utf8("arg"),
    ]);
    if rt.is_runc() {
        assert!(out.status.success(), "{}", out.describe());
    } else {
        assert_one_line_error(&out, "exec with a non-UTF-8 argument");
    }
    assert_eq!(c.status(), "running");
    let out = rt.run_ok(["exec", &id, "echo", "still here"]);
    assert_eq!(out.stdout_str().trim(), "still here");
}

/// Runs `args` and requires an answer within `limit` (a runtime blocked in an open is killed,
/// and the test fails).
fn run_quickly(rt: &Runtime, args: &[&OsStr], limit: Duration) -> Output {
    let started = Instant::now();
    match Spawned::start(&mut rt.cmd(args)).wait_or_kill(limit) {
        Ok(out) => out,
        Err(partial) => panic!(
            "{args:?} still running after {:?}: it hangs\n{}",
            started.elapsed(),
            partial.describe()
        ),
    }
}

#[test]
fn config_json_that_is_not_a_regular_file_is_refused_at_once() {
    let rt = runtime();
    if rt.is_runc() {
        // runc 1.1.5 opens config.json blocking: on a fifo it waits for a writer forever.
        return;
    }
    let bundle = Bundle::new(&rt).args(["true"]);
    let config = bundle.config_path();
    let saved = bundle.path().join("saved-config.json");
    std::fs::rename(&config, &saved).unwrap();
    let fifo = bundle.path().join("a-fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let sparse = bundle.path().join("huge.json");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let replace = |make: &dyn Fn(&Path)| {
        let _ = std::fs::remove_file(&config);
        make(&config);
    };
    type Make<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "a fifo",
            Box::new(|p: &Path| {
                nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap()
            }),
            "not a regular file (a fifo)",
        ),
        (
            "a symlink to a fifo",
            Box::new(|p: &Path| std::os::unix::fs::symlink(&fifo, p).unwrap()),
            "not a regular file (a fifo)",
        ),
        (
            "a symlink to /dev/zero",
            Box::new(|p: &Path| std::os::unix::fs::symlink("/dev/zero", p).unwrap()),
            "not a regular file (a character device)",
        ),
        (
            "a 1 GiB file",
            Box::new(|p: &Path| std::os::unix::fs::symlink(&sparse, p).unwrap()),
            "larger than",
        ),
    ];
    for (what, make, expected) in &cases {
        replace(make.as_ref());
        for command in ["run", "create"] {
            let id = unique_id("cfg");
            let _guard = rt.guard(&id);
            let out = run_quickly(
                &rt,
                &[
                    command.as_ref(),
                    "--bundle".as_ref(),
                    bundle.path().as_os_str(),
                    id.as_ref(),
                ],
                Duration::from_secs(15),
            );
            let error = assert_one_line_error(&out, &format!("{command} with {what}"));
            assert!(
                error.contains(expected) && error.contains("config.json"),
                "{what}: {error}"
            );
            assert_nothing_left(&rt, &format!("{command} with {what} as config.json"));
        }
    }
    // A config.json linked to a regular file elsewhere is a legitimate set-up.
    replace(&|p: &Path| std::os::unix::fs::symlink(&saved, p).unwrap());
    let out = rt.run_bundle(&bundle);
    assert!(out.status.success(), "{}", out.describe());
}

/// `exec --process` names a file of the caller's choosing, which may well be a pipe
/// (`--process <(...)`): it is read as it is, and a caller tired of waiting can stop `exec`.
#[test]
fn exec_waiting_on_a_process_fifo_stops_on_sigterm() {
    let rt = runtime();
    let (bundle, c) = container_with_secret(&rt, "unused");
    let fifo = bundle.path().join("process.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut exec = Spawned::start(&mut rt.cmd([
        OsStr::new("exec"),
        OsStr::new("--process"),
        fifo.as_os_str(),
        OsStr::new(c.id()),
    ]));
    // Blocked in the open of the fifo, which has no writer: /proc/<pid>/syscall starts with
    // the number of openat.
    let in_openat = || {
        std::fs::read_to_string(format!("/proc/{}/syscall", exec.pid()))
            .is_ok_and(|s| s.split(' ').next() == Some(&libc::SYS_openat.to_string()))
    };
    assert!(wait_for(in_openat, WAIT), "exec never blocked on the fifo");
    assert_eq!(exec.try_wait(), None);
    exec.signal(libc::SIGTERM);
    let out = exec
        .wait_or_kill(WAIT)
        .unwrap_or_else(|o| panic!("exec ignored SIGTERM\n{}", o.describe()));
    assert!(!out.status.success());
    assert_eq!(c.status(), "running");
}

/// What the probe sees of `path` from inside a container of `bundle` (its `--path` check
/// opens for writing without writing anything).
fn probe_path(rt: &Runtime, bundle: Bundle, path: &str) -> Value {
    let bundle = bundle.args(["/usr/bin/probe", "--path", path]);
    let out = rt.run_bundle(&bundle);
    assert!(out.status.success(), "{}", out.describe());
    let report: Value = serde_json::from_str(&out.stdout_str())
        .unwrap_or_else(|e| panic!("probe output is not JSON ({e}): {}", out.describe()));
    report["paths"][path].clone()
}

/// The device rules are enforced by the v1 devices controller or the v2 eBPF filter alike; the
/// tests only need the host's /dev/kmsg, and fail loudly without it.
fn require_kmsg() {
    assert!(
        Path::new("/dev/kmsg").exists(),
        "no /dev/kmsg on this host: the device-rule tests bind it into the container"
    );
}

/// /dev/kmsg (c 1:11) listed in `linux.devices` is created, but without a `resources.devices`
/// rule allowing it the container cannot open it (it could write the host's kernel log).
#[test]
fn listed_device_without_an_allow_rule_cannot_be_opened() {
    let rt = runtime();
    require_kmsg();
    let listed = || Bundle::new(&rt).add_device("/dev/kmsg", "c", 1, 11, 0o666, 0, 0);
    let check = probe_path(&rt, listed(), "/dev/kmsg");
    assert_eq!(check["type"], "char", "/dev/kmsg not created: {check}");
    assert_eq!(check["writable"], false, "{check}");
    assert_eq!(check["write_error"]["errno"], libc::EPERM, "{check}");

    // With a rule that allows it, the listed device can be opened (the probe writes nothing).
    let allowed = listed().push(
        "/linux/resources/devices",
        json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}),
    );
    let check = probe_path(&rt, allowed, "/dev/kmsg");
    assert_eq!(check["writable"], true, "{check}");
}

/// Listing some other device grants nothing beyond it: the host's /dev/kmsg, bound into the
/// container, stays closed.
#[test]
fn listing_another_device_does_not_open_kmsg() {
    let rt = runtime();
    require_kmsg();
    let bundle = Bundle::new(&rt)
        .add_device("/dev/husk-test-loop-control", "c", 10, 237, 0o600, 0, 0)
        .add_mount("/dev/husk-test-kmsg", "bind", "/dev/kmsg", &["bind"]);
    let check = probe_path(&rt, bundle, "/dev/husk-test-kmsg");
    assert_eq!(check["type"], "char", "{check}");
    assert_eq!(check["writable"], false, "{check}");
    assert_eq!(check["write_error"]["errno"], libc::EPERM, "{check}");
}

/// A broken bundle given to `create`: refused in one line that contains `needle` (what is
/// wrong), and nothing left behind (issue 13's list of hostile and broken input).
fn assert_create_refused(rt: &Runtime, bundle: &Bundle, needle: &str, what: &str) {
    let id = unique_id("bad");
    let path = bundle.path().as_os_str();
    let out = run_quickly(
        rt,
        &[
            OsStr::new("create"),
            OsStr::new("--bundle"),
            path,
            OsStr::new(&id),
        ],
        WAIT,
    );
    let line = assert_one_line_error(&out, what);
    assert!(
        line.contains(needle),
        "{what}: the error does not name {needle:?}: {line}"
    );
    assert_nothing_left(rt, what);
    assert!(bundle.leftover_mounts().is_empty(), "{what}: mounts left");
}

#[test]
fn broken_config_json_is_refused_in_one_line_naming_the_problem() {
    let rt = runtime();
    let write = |b: &Bundle, text: &str| std::fs::write(b.config_path(), text).unwrap();

    let b = Bundle::new(&rt);
    std::fs::remove_file(b.config_path()).unwrap();
    assert_create_refused(&rt, &b, "config.json", "config.json missing");

    let b = Bundle::new(&rt);
    write(&b, "");
    assert_create_refused(&rt, &b, "config.json", "config.json empty");

    let b = Bundle::new(&rt);
    write(&b, "{\"ociVersion\": \"1.0.2\", ");
    assert_create_refused(&rt, &b, "config.json", "config.json not JSON");

    let b = Bundle::new(&rt).set("/process/args", json!("sh"));
    assert_create_refused(&rt, &b, "args", "process.args of the wrong type");

    let b = Bundle::new(&rt).set("/process/user/uid", json!("root"));
    assert_create_refused(&rt, &b, "uid", "process.user.uid of the wrong type");

    let b = Bundle::new(&rt).set("/ociVersion", json!("9.0.0"));
    assert_create_refused(&rt, &b, "9.0.0", "unsupported ociVersion");

    let b = Bundle::new(&rt).set("/root/path", json!("no-such-rootfs"));
    assert_create_refused(&rt, &b, "no-such-rootfs", "missing rootfs");

    let b = Bundle::new(&rt).set("/process/args", json!([]));
    assert_create_refused(&rt, &b, "process.args", "empty args");

    let b = Bundle::new(&rt).args(["/bin/no-such-program"]);
    assert_create_refused(&rt, &b, "/bin/no-such-program", "nonexistent executable");

    let b = Bundle::new(&rt).push("/process/capabilities/bounding", json!("CAP_NO_SUCH_THING"));
    assert_create_refused(&rt, &b, "CAP_NO_SUCH_THING", "unknown capability");
}

#[test]
fn broken_command_lines_are_refused_in_one_line_naming_the_problem() {
    let rt = runtime();
    let b = Bundle::new(&rt).sh("exec sleep 1000");
    let scratch = TempDir::new("husk-test-bad-input");

    // A pid file in a directory that does not exist: refused, and no container left.
    let id = unique_id("bad");
    let pid_file = scratch.path().join("no-such-dir/pid");
    let out = run_quickly(
        &rt,
        &[
            OsStr::new("create"),
            OsStr::new("--bundle"),
            b.path().as_os_str(),
            OsStr::new("--pid-file"),
            pid_file.as_os_str(),
            OsStr::new(&id),
        ],
        WAIT,
    );
    let line = assert_one_line_error(&out, "pid file in a missing directory");
    assert!(line.contains("no-such-dir"), "pid file: {line}");
    assert_nothing_left(&rt, "pid file in a missing directory");

    // A console socket path that is a regular file, not a socket.
    let not_socket = scratch.path().join("not-a-socket");
    std::fs::write(&not_socket, "").unwrap();
    let tty = Bundle::new(&rt).set("/process/terminal", json!(true));
    let id = unique_id("bad");
    let out = run_quickly(
        &rt,
        &[
            OsStr::new("create"),
            OsStr::new("--bundle"),
            tty.path().as_os_str(),
            OsStr::new("--console-socket"),
            not_socket.as_os_str(),
            OsStr::new(&id),
        ],
        WAIT,
    );
    let line = assert_one_line_error(&out, "console socket not a socket");
    assert!(line.contains("not-a-socket"), "console socket: {line}");
    assert_nothing_left(&rt, "console socket not a socket");

    // Against a running container: bad signals and a malformed process.json.
    let c = rt.create(&b);
    c.start();
    for signal in ["SIGNOPE", "NOPE", "65", "-3"] {
        let out = run_quickly(
            &rt,
            &[OsStr::new("kill"), OsStr::new(c.id()), OsStr::new(signal)],
            WAIT,
        );
        let line = assert_one_line_error(&out, "bad signal");
        assert!(
            line.contains(signal.trim_start_matches('-')),
            "signal {signal}: {line}"
        );
    }
    let process_json = scratch.path().join("process.json");
    for (text, needle) in [
        ("", "process.json"),
        ("{\"args\": 7}", "args"),
        ("[1,2]", "process.json"),
    ] {
        std::fs::write(&process_json, text).unwrap();
        let out = run_quickly(
            &rt,
            &[
                OsStr::new("exec"),
                OsStr::new("--process"),
                process_json.as_os_str(),
                OsStr::new(c.id()),
            ],
            WAIT,
        );
        let line = assert_one_line_error(&out, "malformed process.json");
        assert!(line.contains(needle), "process.json {text:?}: {line}");
    }
    assert_eq!(
        c.status(),
        "running",
        "the container survives the bad commands"
    );
}

/// 10,000 mounts: the bootstrap carries them (through a memfd above the socket's packet size)
/// and the container sees every one.
#[test]
fn ten_thousand_mounts_are_all_made() {
    let rt = runtime();
    let many: Vec<Value> = (0..10_000)
        .map(|i| json!({"destination": format!("/many/m{i}"), "type": "tmpfs", "source": "tmpfs", "options": ["size=4k"]}))
        .collect();
    // One edit: each edit of a Bundle rewrites config.json.
    let b = Bundle::new(&rt)
        .with_shared_dir()
        .sh("grep -c ' /many/m' /proc/self/mountinfo > /shared/count")
        .edit(|config| config["mounts"].as_array_mut().unwrap().extend(many));
    let out = rt.run_bundle(&b);
    assert!(out.status.success(), "{}", out.describe());
    let count = std::fs::read_to_string(b.shared_dir().join("count")).unwrap();
    assert_eq!(count.trim(), "10000");
}
