//! `exec`: the new process joins the container's namespaces and cgroup, gets its security profile by default, and
//! honours every flag (-p, -t, --cwd, -e, -u, -g, -c, --no-new-privs, -d, --pid-file, --preserve-fds,
//! --console-socket, --cgroup, --ignore-paused, --process-label, --apparmor); exit codes, errors and logs.
//! Everything is checked from inside the container or on the process itself.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

mod io_support;

use std::ffi::OsString;
use std::process::{Command, Output, Stdio};

use husk_testing::{
    is_gone, unique_id, wait_for, Bundle, ContainerGuard, OutputExt, Runtime, Spawned, TempDir,
    DEFAULT_TIMEOUT,
};
use io_support::{
    cgroup_dirs, is_rfc3339, join_console, place_fds_from_3, proc_link, proc_status, read_pid_file,
    read_pty_to_end, read_pty_until, runtime, set_window_size, sleeper, status_field, wait_child,
    ConsoleSocket, WAIT,
};
use serde_json::{json, Value};

/// Creates and starts `bundle` (which must write /shared/ready) and waits until its process runs.
fn running<'rt>(rt: &'rt Runtime, bundle: &Bundle) -> ContainerGuard<'rt> {
    let c = rt.create(bundle);
    c.start();
    assert!(
        wait_for(|| bundle.read_shared("ready").is_some(), WAIT),
        "container process did not start"
    );
    c
}

/// `exec <flags...> <id> <command...>` with stdin from /dev/null, whatever its exit status.
fn exec(rt: &Runtime, flags: &[&str], id: &str, command: &[&str]) -> Output {
    let mut args: Vec<&str> = vec!["exec"];
    args.extend_from_slice(flags);
    args.push(id);
    args.extend_from_slice(command);
    rt.run(&args)
}

/// Like [`exec`] but panics unless it exits 0; returns stdout.
fn exec_ok(rt: &Runtime, flags: &[&str], id: &str, command: &[&str]) -> String {
    let out = exec(rt, flags, id, command);
    assert!(
        out.status.success(),
        "exec {flags:?} {command:?} failed\n{}",
        out.describe()
    );
    out.stdout_str()
}

/// CapEff-style hex mask of capability numbers.
fn cap_mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | (1 << c)))
}

const CAP_CHOWN: u32 = 0;
const CAP_KILL: u32 = 5;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_AUDIT_WRITE: u32 = 29;
/// The capabilities of the `spec` template (runc's and husk's).
const TEMPLATE_CAPS: [u32; 3] = [CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE];

#[test]
fn exec_joins_every_namespace_of_the_init() {
    let rt = runtime();
    // Every namespace kind the host can give a root container: the template's plus cgroup.
    let bundle = sleeper(&rt).add_namespace("cgroup", None);
    let c = running(&rt, &bundle);
    let init = c.pid();
    let out = exec_ok(
        &rt,
        &[],
        c.id(),
        &[
            "sh",
            "-c",
            "for n in /proc/self/ns/*; do echo \"${n##*/} $(readlink $n)\"; done",
        ],
    );
    let inside: Vec<(&str, &str)> = out
        .lines()
        .map(|l| {
            l.split_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"))
        })
        .collect();
    for kind in ["cgroup", "ipc", "mnt", "net", "pid", "uts", "user"] {
        assert!(
            inside.iter().any(|(name, _)| *name == kind),
            "no {kind} namespace listed:\n{out}"
        );
    }
    for (name, link) in &inside {
        assert_eq!(
            *link,
            proc_link(init, &format!("ns/{name}")),
            "exec'd process is not in the init's {name} namespace:\n{out}"
        );
    }
    // The container's own namespaces really are new, so the comparison above means something.
    for kind in ["cgroup", "ipc", "mnt", "net", "pid", "uts"] {
        assert_ne!(
            proc_link(init, &format!("ns/{kind}")),
            proc_link(std::process::id() as i32, &format!("ns/{kind}")),
            "the container shares the host's {kind} namespace"
        );
    }
}

#[test]
fn exec_joins_the_init_cgroup() {
    let rt = runtime();
    let bundle = sleeper(&rt).remove_namespace("cgroup");
    let c = running(&rt, &bundle);
    let dir = TempDir::new("husk-test-exec");
    let pid_file = dir.join("exec.pid");
    exec_ok(
        &rt,
        &["-d", "--pid-file", pid_file.to_str().unwrap()],
        c.id(),
        &["sleep", "1000"],
    );
    let pid = read_pid_file(&pid_file);
    let init_cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    let exec_cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(
        exec_cgroups, init_cgroups,
        "exec'd process is not in the init's cgroups"
    );
    // The same seen from inside (no cgroup namespace: full paths).
    let out = exec_ok(
        &rt,
        &[],
        c.id(),
        &[
            "sh",
            "-c",
            "cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup",
        ],
    );
    let (own, init) = out.split_once("---\n").expect("separator");
    assert_eq!(own, init, "{out}");
    assert_ne!(
        own,
        std::fs::read_to_string("/proc/self/cgroup").unwrap(),
        "container cgroup is the test's own"
    );
}

#[test]
fn exec_gets_the_container_capabilities() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let out = exec_ok(&rt, &[], c.id(), &["grep", "^Cap", "/proc/self/status"]);
    let init = proc_status(c.pid());
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(
            status_field(&out, set),
            cap_mask(&TEMPLATE_CAPS),
            "{set}:\n{out}"
        );
        assert_eq!(status_field(&out, set), status_field(&init, set), "{set}");
    }
}

#[test]
fn exec_gets_the_container_no_new_privileges() {
    let rt = runtime();
    for (enabled, expected) in [(true, "1"), (false, "0")] {
        let bundle = sleeper(&rt).no_new_privileges(enabled);
        let c = running(&rt, &bundle);
        let out = exec_ok(
            &rt,
            &[],
            c.id(),
            &["grep", "NoNewPrivs", "/proc/self/status"],
        );
        assert_eq!(
            status_field(&out, "NoNewPrivs"),
            expected,
            "noNewPrivileges={enabled}"
        );
    }
}

#[test]
fn exec_gets_the_container_seccomp_profile() {
    let rt = runtime();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
    });
    let bundle = sleeper(&rt).set("/linux/seccomp", profile).add_mount(
        "/work",
        "tmpfs",
        "tmpfs",
        &["size=1m"],
    );
    let c = running(&rt, &bundle);
    let out = exec(
        &rt,
        &[],
        c.id(),
        &[
            "sh",
            "-c",
            "grep ^Seccomp: /proc/self/status; mkdir /work/d && echo created",
        ],
    );
    let stdout = out.stdout_str();
    assert_eq!(
        status_field(&stdout, "Seccomp"),
        "2",
        "no seccomp filter:\n{}",
        out.describe()
    );
    assert!(
        !stdout.contains("created") && out.stderr_str().contains("Operation not permitted"),
        "mkdir was not refused by the profile\n{}",
        out.describe()
    );
    // Without a profile there is no filter: the check above is about the bundle's profile.
    let plain_bundle = sleeper(&rt);
    let plain = running(&rt, &plain_bundle);
    let out = exec_ok(
        &rt,
        &[],
        plain.id(),
        &["grep", "^Seccomp:", "/proc/self/status"],
    );
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
}

#[test]
fn exec_gets_the_container_rlimits() {
    let rt = runtime();
    let bundle = sleeper(&rt)
        .rlimit("RLIMIT_NOFILE", 512, 1024)
        .rlimit("RLIMIT_NPROC", 300, 400);
    let c = running(&rt, &bundle);
    let out = exec_ok(
        &rt,
        &[],
        c.id(),
        &["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u; ulimit -Hu"],
    );
    assert_eq!(out, "512\n1024\n300\n400\n");
}

#[test]
fn exec_process_json_replaces_the_defaults() {
    let rt = runtime();
    let bundle = sleeper(&rt)
        .no_new_privileges(true)
        .rlimit("RLIMIT_NPROC", 300, 400)
        .add_env("BUNDLE_ONLY=1");
    let c = running(&rt, &bundle);
    let dir = TempDir::new("husk-test-exec");
    let as_user = json!({
        "terminal": false,
        "user": { "uid": 1000, "gid": 1000, "additionalGids": [1001] },
        "args": ["sh", "-c", "id; pwd; env; ulimit -u; ulimit -Hu; grep NoNewPrivs: /proc/self/status"],
        "env": ["PATH=/bin:/usr/bin", "FROM_JSON=yes"],
        "cwd": "/tmp",
        "noNewPrivileges": false,
        "rlimits": [{ "type": "RLIMIT_NPROC", "soft": 250, "hard": 260 }]
    });
    // Capabilities as root: a non-root user loses its effective set at execve whatever the runtime does.
    let with_caps = json!({
        "terminal": false,
        "user": { "uid": 0, "gid": 0 },
        "args": ["grep", "^Cap", "/proc/self/status"],
        "env": ["PATH=/bin:/usr/bin"],
        "cwd": "/",
        "capabilities": {
            "bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]
        }
    });
    let user_json = dir.join("user.json");
    std::fs::write(&user_json, as_user.to_string()).unwrap();
    let caps_json = dir.join("caps.json");
    std::fs::write(&caps_json, with_caps.to_string()).unwrap();
    for flag in ["-p", "--process"] {
        let out = exec_ok(&rt, &[flag, user_json.to_str().unwrap()], c.id(), &[]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0], "uid=1000(user) gid=1000(user) groups=1001(extra1)",
            "{flag}:\n{out}"
        );
        assert_eq!(lines[1], "/tmp", "{flag}:\n{out}");
        assert!(lines.contains(&"FROM_JSON=yes"), "{flag}:\n{out}");
        assert!(
            !out.contains("BUNDLE_ONLY"),
            "the bundle's env leaked into a process.json exec:\n{out}"
        );
        assert!(out.contains("250\n260\n"), "rlimits not replaced:\n{out}");
        assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");

        let out = exec_ok(&rt, &[flag, caps_json.to_str().unwrap()], c.id(), &[]);
        for set in ["CapPrm", "CapEff", "CapBnd"] {
            assert_eq!(
                status_field(&out, set),
                cap_mask(&[CAP_CHOWN]),
                "{set}:\n{out}"
            );
        }
    }
}

#[test]
fn exec_tty_sends_the_pty_to_the_console_socket() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let socket = ConsoleSocket::new();
    let receiver = socket.receive_in_background();
    let out = exec(
        &rt,
        &[
            "-t",
            "-d",
            "--console-socket",
            socket.path().to_str().unwrap(),
        ],
        c.id(),
        &[
            "sh",
            "-c",
            "tty; for fd in 0 1 2; do test -t $fd && echo fd$fd-is-tty; done; sleep 1; echo end",
        ],
    );
    assert!(out.status.success(), "{}", out.describe());
    let console = join_console(receiver);
    let text = read_pty_until(&console.master, WAIT, |t| t.contains("end\n"));
    let mut lines = text.lines();
    let tty = lines.next().unwrap_or_default();
    assert!(tty.starts_with("/dev/pts/"), "stdin is not a pty: {text:?}");
    for fd in 0..3 {
        assert!(
            text.contains(&format!("fd{fd}-is-tty")),
            "fd {fd} is not a terminal: {text:?}"
        );
    }
    assert!(text.contains("end"), "{text:?}");
}

#[test]
fn exec_console_socket_with_process_json_console_size() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let dir = TempDir::new("husk-test-exec");
    let process = json!({
        "terminal": true,
        "consoleSize": { "height": 37, "width": 111 },
        "user": { "uid": 0, "gid": 0 },
        "args": ["sh", "-c", "stty size; sleep 1"],
        "env": ["PATH=/bin:/usr/bin", "TERM=xterm"],
        "cwd": "/"
    });
    let path = dir.join("process.json");
    std::fs::write(&path, process.to_string()).unwrap();
    let socket = ConsoleSocket::new();
    let receiver = socket.receive_in_background();
    let out = exec(
        &rt,
        &[
            "-d",
            "--console-socket",
            socket.path().to_str().unwrap(),
            "-p",
            path.to_str().unwrap(),
        ],
        c.id(),
        &[],
    );
    assert!(out.status.success(), "{}", out.describe());
    let console = join_console(receiver);
    let text = read_pty_to_end(&console.master, WAIT);
    assert_eq!(text.trim(), "37 111", "consoleSize not applied");
}

/// A pty pair for the runtime's own stdio: (master, slave).
fn open_pty() -> (std::fs::File, std::fs::File) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    (
        std::fs::File::from(pty.master),
        std::fs::File::from(pty.slave),
    )
}

/// Runs the runtime with `args` with a pty (of size rows x cols) as its stdin/stdout/stderr and controlling
/// terminal, as an interactive shell would; returns its exit status and everything it wrote to the pty.
fn run_on_pty(rt: &Runtime, args: &[&str], rows: u16, cols: u16) -> (i32, String) {
    use std::os::fd::AsFd;
    use std::os::unix::process::CommandExt;
    let (master, slave) = open_pty();
    set_window_size(slave.as_fd(), rows, cols);
    let mut cmd = rt.cmd(args);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: between fork and exec only async-signal-safe calls (setsid, ioctl) are made.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn runtime on a pty");
    drop(cmd);
    // The slave copies went to the child; EIO on the master then means the child side is all closed.
    let reader = std::thread::spawn(move || read_pty_to_end(&master, WAIT));
    let status = wait_child(&mut child, WAIT, "runtime on a pty");
    let text = reader.join().expect("pty reader");
    (husk_exit_code(status), text)
}

fn husk_exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[test]
fn exec_tty_in_the_foreground_relays_through_the_callers_terminal() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let (code, text) = run_on_pty(
        &rt,
        &[
            "exec",
            "-t",
            c.id(),
            "sh",
            "-c",
            // The size first: it must be right from the process's first instruction, not once a relay has
            // caught up.
            "stty size; tty; test -t 0 && test -t 1 && echo all-tty; exit 5",
        ],
        25,
        91,
    );
    assert_eq!(code, 5, "exit code not passed on; output:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"25 91"),
        "the caller's window size was not the process's from the start: {text:?}"
    );
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with("/dev/pts/")),
        "{text:?}"
    );
    assert!(lines.contains(&"all-tty"), "{text:?}");
}

#[test]
fn exec_cwd_flag() {
    let rt = runtime();
    let bundle = sleeper(&rt).cwd("/");
    let c = running(&rt, &bundle);
    assert_eq!(exec_ok(&rt, &[], c.id(), &["pwd"]), "/\n");
    assert_eq!(exec_ok(&rt, &["--cwd", "/etc"], c.id(), &["pwd"]), "/etc\n");
}

#[test]
fn exec_env_flag_adds_and_overrides() {
    let rt = runtime();
    let bundle = sleeper(&rt).env(["PATH=/bin", "KEEP=kept", "OVERRIDE=old"]);
    let c = running(&rt, &bundle);
    // runc refuses the short and the long form in one command line, so each gets its own run.
    for flag in ["-e", "--env"] {
        let out = exec_ok(
            &rt,
            &[flag, "NEW=new value", flag, "OVERRIDE=new"],
            c.id(),
            &["env"],
        );
        let vars: Vec<&str> = out.lines().collect();
        for expected in ["PATH=/bin", "KEEP=kept", "NEW=new value", "OVERRIDE=new"] {
            assert!(
                vars.contains(&expected),
                "{flag}: {expected} missing:\n{out}"
            );
        }
        assert_eq!(
            vars.iter().filter(|v| v.starts_with("OVERRIDE=")).count(),
            1,
            "{flag}: {out}"
        );
    }
}

#[test]
fn exec_user_flag() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let script = "grep -E '^(Uid|Gid|Groups):' /proc/self/status";
    for (flag, uid, gid) in [("1000:1000", "1000", "1000"), ("65534", "65534", "0")] {
        let out = exec_ok(&rt, &["-u", flag], c.id(), &["sh", "-c", script]);
        assert_eq!(
            status_field(&out, "Uid")
                .split_whitespace()
                .collect::<Vec<_>>(),
            [uid; 4],
            "-u {flag}:\n{out}"
        );
        assert_eq!(
            status_field(&out, "Gid")
                .split_whitespace()
                .collect::<Vec<_>>(),
            [gid; 4],
            "-u {flag}:\n{out}"
        );
        assert_eq!(status_field(&out, "Groups"), "", "-u {flag}:\n{out}");
    }
    let out = exec_ok(&rt, &["--user", "1000:1000"], c.id(), &["id", "-u"]);
    assert_eq!(out, "1000\n");
}

#[test]
fn exec_additional_gids_flag() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    // runc refuses the short and the long form in one command line, so each gets its own run.
    for flags in [
        ["-u", "1000:1000", "-g", "1001", "-g", "1002"],
        [
            "-u",
            "1000:1000",
            "--additional-gids",
            "1001",
            "--additional-gids",
            "1002",
        ],
    ] {
        let out = exec_ok(
            &rt,
            &flags,
            c.id(),
            &["sh", "-c", "id; grep ^Groups: /proc/self/status"],
        );
        assert_eq!(
            out.lines().next(),
            Some("uid=1000(user) gid=1000(user) groups=1001(extra1),1002(extra2)"),
            "{flags:?}: {out}"
        );
        assert_eq!(
            status_field(&out, "Groups"),
            "1001 1002",
            "{flags:?}: {out}"
        );
    }
}

#[test]
fn exec_cap_flag_adds_a_capability() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    for flag in ["-c", "--cap"] {
        let out = exec_ok(
            &rt,
            &[flag, "CAP_SYS_ADMIN"],
            c.id(),
            &["grep", "^Cap", "/proc/self/status"],
        );
        let mut expected = TEMPLATE_CAPS.to_vec();
        expected.push(CAP_SYS_ADMIN);
        for set in ["CapPrm", "CapEff", "CapBnd"] {
            assert_eq!(
                status_field(&out, set),
                cap_mask(&expected),
                "{flag} {set}:\n{out}"
            );
        }
    }
    // The container itself keeps its own set.
    let init = proc_status(c.pid());
    assert_eq!(status_field(&init, "CapBnd"), cap_mask(&TEMPLATE_CAPS));
}

#[test]
fn exec_no_new_privs_flag() {
    let rt = runtime();
    let bundle = sleeper(&rt).no_new_privileges(false);
    let c = running(&rt, &bundle);
    let grep = ["grep", "NoNewPrivs", "/proc/self/status"];
    assert_eq!(
        status_field(&exec_ok(&rt, &[], c.id(), &grep), "NoNewPrivs"),
        "0"
    );
    let out = exec_ok(&rt, &["--no-new-privs"], c.id(), &grep);
    assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{out}");
}

#[test]
fn exec_detach_returns_while_the_process_runs() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    for flag in ["-d", "--detach"] {
        let marker = unique_id("detached");
        let started = std::time::Instant::now();
        exec_ok(
            &rt,
            &[flag],
            c.id(),
            &[
                "sh",
                "-c",
                &format!("echo $$ > /shared/{marker}; exec sleep 1000"),
            ],
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{flag} waited for the process"
        );
        assert!(
            wait_for(|| bundle.read_shared(&marker).is_some(), WAIT),
            "{flag}: the detached process did not run"
        );
        // It is still running (a `sleep 1000` in the container's pid namespace).
        let running = rt
            .run_ok(["exec", c.id(), "sh", "-c", "ps -o pid,args"])
            .stdout_str();
        let pid = bundle.read_shared(&marker).unwrap().trim().to_string();
        assert!(
            running
                .lines()
                .any(|l| l.split_whitespace().next() == Some(&pid) && l.contains("sleep 1000")),
            "{flag}: detached process {pid} not running:\n{running}"
        );
    }
}

#[test]
fn exec_pid_file_holds_the_process_pid() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let dir = TempDir::new("husk-test-exec");
    let pid_file = dir.join("exec.pid");
    exec_ok(
        &rt,
        &["-d", "--pid-file", pid_file.to_str().unwrap()],
        c.id(),
        &["sleep", "1001"],
    );
    let pid = read_pid_file(&pid_file);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert_eq!(
        cmdline, b"sleep\x001001\x00",
        "pid file names pid {pid}, which is not the exec'd process"
    );
    assert_eq!(
        proc_link(pid, "ns/pid"),
        proc_link(c.pid(), "ns/pid"),
        "pid {pid} is not in the container"
    );
    // Foreground too: the file appears while the process runs.
    let fg_file = dir.join("fg.pid");
    let out = exec(
        &rt,
        &["--pid-file", fg_file.to_str().unwrap()],
        c.id(),
        &["sh", "-c", "echo $$"],
    );
    assert!(out.status.success(), "{}", out.describe());
    let pid = read_pid_file(&fg_file);
    assert!(
        pid > 0 && is_gone(pid),
        "foreground pid {pid} still running"
    );
}

#[test]
fn exec_preserve_fds_passes_extra_descriptors() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let dir = TempDir::new("husk-test-exec");
    std::fs::write(dir.join("three"), "content of fd three\n").unwrap();
    std::fs::write(dir.join("four"), "content of fd four\n").unwrap();
    let three = std::fs::File::open(dir.join("three")).unwrap();
    let four = std::fs::File::open(dir.join("four")).unwrap();

    let script = "cat /proc/self/fd/3; cat /proc/self/fd/4 2>/dev/null || echo no-fd-4";
    let mut cmd = rt.cmd(["exec", "--preserve-fds", "1", c.id(), "sh", "-c", script]);
    place_fds_from_3(&mut cmd, &[&three, &four]);
    let out = run_capturing(&mut cmd);
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout_str(), "content of fd three\nno-fd-4\n");

    let mut cmd = rt.cmd(["exec", "--preserve-fds", "2", c.id(), "sh", "-c", script]);
    place_fds_from_3(&mut cmd, &[&three, &four]);
    let out = run_capturing(&mut cmd);
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(
        out.stdout_str(),
        "content of fd three\ncontent of fd four\n"
    );

    // Without the flag, the caller's extra fds stay outside.
    let mut cmd = rt.cmd(["exec", c.id(), "sh", "-c", script]);
    place_fds_from_3(&mut cmd, &[&three]);
    let out = run_capturing(&mut cmd);
    assert!(
        !out.stdout_str().contains("content of fd three"),
        "fd 3 leaked without --preserve-fds\n{}",
        out.describe()
    );
}

/// Runs `cmd` (pre-configured, e.g. with extra fds) with stdin /dev/null and captured output, bounded in time.
fn run_capturing(cmd: &mut Command) -> Output {
    Spawned::start(cmd).wait(DEFAULT_TIMEOUT)
}

#[test]
fn exec_console_socket_without_tty_is_refused_or_unused() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let socket = ConsoleSocket::new();
    // runc refuses a console socket for a process that gets no terminal; a runtime may also ignore it, but must
    // never hand out a terminal nobody asked for.
    let out = exec(
        &rt,
        &["--console-socket", socket.path().to_str().unwrap()],
        c.id(),
        &[
            "sh",
            "-c",
            "test -t 1 && echo is-tty; echo ran > /shared/ran",
        ],
    );
    if out.status.success() {
        assert!(!out.stdout_str().contains("is-tty"), "{}", out.describe());
        assert_eq!(bundle.read_shared("ran").as_deref(), Some("ran\n"));
    } else {
        assert!(
            out.stderr_str().contains("console"),
            "unclear error\n{}",
            out.describe()
        );
        assert!(bundle.read_shared("ran").is_none());
    }
}

#[test]
fn exec_cgroup_flag_uses_a_sub_cgroup() {
    let rt = runtime();
    let bundle = sleeper(&rt).remove_namespace("cgroup");
    let c = running(&rt, &bundle);
    // runc runs the process in an existing sub-cgroup: create it in every hierarchy.
    let container_dirs = cgroup_dirs(c.pid());
    assert!(!container_dirs.is_empty(), "container has no cgroup dirs");
    let subs: Vec<_> = container_dirs.iter().map(|d| d.join("sub")).collect();
    let _cleanup = SubCgroups {
        rt: &rt,
        id: c.id().to_owned(),
        subs: subs.clone(),
    };
    for sub in &subs {
        std::fs::create_dir_all(sub).unwrap_or_else(|e| panic!("mkdir {}: {e}", sub.display()));
        // A new v1 cpuset cgroup starts with no cpus and mems: it takes no process until given its parent's.
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let parent = sub.parent().unwrap().join(file);
            if let Ok(value) = std::fs::read_to_string(&parent) {
                std::fs::write(sub.join(file), value.trim())
                    .unwrap_or_else(|e| panic!("write {}: {e}", sub.join(file).display()));
            }
        }
    }
    let dir = TempDir::new("husk-test-exec");
    let pid_file = dir.join("exec.pid");
    exec_ok(
        &rt,
        &[
            "-d",
            "--cgroup",
            "sub",
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
        c.id(),
        &["sleep", "1000"],
    );
    let pid = read_pid_file(&pid_file);
    let init_cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    let exec_cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for (init_line, exec_line) in init_cgroups.lines().zip(exec_cgroups.lines()) {
        assert_eq!(
            exec_line,
            format!("{}/sub", init_line.trim_end_matches('/')),
            "not in the sub-cgroup:\n{exec_cgroups}"
        );
    }
    // From inside too.
    let out = exec_ok(
        &rt,
        &["--cgroup", "sub"],
        c.id(),
        &["cat", "/proc/self/cgroup"],
    );
    assert!(out.lines().all(|l| l.ends_with("/sub")), "{out}");
    // `delete` removes the container's cgroups, the sub-cgroup its processes used included.
    rt.run_ok(["delete", "--force", c.id()]);
    let left: Vec<_> = container_dirs
        .iter()
        .chain(&subs)
        .filter(|d| d.exists())
        .collect();
    assert!(left.is_empty(), "cgroups left after delete: {left:?}");
}

/// Deletes the container, then removes the sub-cgroup directories the test created and any container cgroup
/// directory that could not be removed because of them (also when the test panics).
struct SubCgroups<'rt> {
    rt: &'rt Runtime,
    id: String,
    subs: Vec<std::path::PathBuf>,
}

impl Drop for SubCgroups<'_> {
    fn drop(&mut self) {
        let _ = self.rt.run(["delete", "--force", &self.id]);
        for sub in &self.subs {
            for dir in [Some(sub.as_path()), sub.parent()].into_iter().flatten() {
                if dir.exists() {
                    wait_for(|| std::fs::remove_dir(dir).is_ok() || !dir.exists(), WAIT);
                }
            }
        }
    }
}

fn has_subcommand(rt: &Runtime, name: &str) -> bool {
    let out = husk_testing::run_with_timeout(&mut rt.bare_cmd(["--help"]), DEFAULT_TIMEOUT);
    out.stdout_str()
        .lines()
        .any(|l| l.split_whitespace().next().map(|w| w.trim_end_matches(',')) == Some(name))
}

#[test]
fn exec_ignore_paused_runs_once_resumed() {
    let rt = runtime();
    assert!(
        has_subcommand(&rt, "pause") && has_subcommand(&rt, "resume"),
        "needs pause: {} has no pause/resume subcommand, so --ignore-paused cannot be tested",
        rt.name()
    );
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    rt.run_ok(["pause", c.id()]);
    assert_eq!(c.status(), "paused");
    let out = exec(
        &rt,
        &[],
        c.id(),
        &["sh", "-c", "echo ran > /shared/refused"],
    );
    assert!(
        !out.status.success() && out.stderr_str().contains("paused"),
        "exec into a paused container without --ignore-paused\n{}",
        out.describe()
    );
    assert!(bundle.read_shared("refused").is_none());

    let mut pending = rt.spawn([
        "exec",
        "--ignore-paused",
        c.id(),
        "sh",
        "-c",
        "echo ran > /shared/ran",
    ]);
    // The process joins the frozen cgroup: nothing runs until resume.
    std::thread::sleep(std::time::Duration::from_secs(1));
    if let Some(status) = pending.try_wait() {
        let (stdout, stderr) = pending.output_so_far();
        panic!("exec --ignore-paused ended while paused ({status}):\n{stdout}\n{stderr}");
    }
    assert!(bundle.read_shared("ran").is_none(), "ran while paused");
    rt.run_ok(["resume", c.id()]);
    let out = pending.wait(DEFAULT_TIMEOUT);
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(bundle.read_shared("ran").as_deref(), Some("ran\n"));
}

/// True when the host has the Linux security module `lsm` ("apparmor" or "selinux") active.
fn lsm_active(lsm: &str) -> bool {
    let own_switch = match lsm {
        "apparmor" => std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.trim_start().starts_with('Y')),
        _ => std::path::Path::new("/sys/fs/selinux/enforce").exists(),
    };
    own_switch
        || std::fs::read_to_string("/sys/kernel/security/lsm")
            .is_ok_and(|l| l.trim().split(',').any(|m| m == lsm))
}

fn assert_refused_label(flag: &str, lsm: &str, words: &[&str]) {
    let rt = runtime();
    assert!(
        !lsm_active(lsm),
        "this test expects a host without {lsm}; it is active here"
    );
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let out = exec(
        &rt,
        &[flag, "some_profile"],
        c.id(),
        &["sh", "-c", "echo ran > /shared/ran"],
    );
    assert!(
        !out.status.success(),
        "{flag} accepted on a host without {lsm}\n{}",
        out.describe()
    );
    let stderr = out.stderr_str().to_lowercase();
    assert!(
        words.iter().any(|w| stderr.contains(w)),
        "the error does not say {lsm} is the problem\n{}",
        out.describe()
    );
    assert!(
        bundle.read_shared("ran").is_none(),
        "the process ran without the requested {lsm} label"
    );
}

#[test]
fn exec_apparmor_flag_fails_clearly_without_apparmor() {
    assert_refused_label("--apparmor", "apparmor", &["apparmor"]);
}

#[test]
fn exec_process_label_flag_fails_clearly_without_selinux() {
    assert_refused_label("--process-label", "selinux", &["selinux"]);
}

#[test]
fn exec_exit_code_is_the_process_exit_code() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    for (script, expected) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("exit 255", 255),
        ("kill -TERM $$", 128 + 15),
        ("kill -KILL $$", 128 + 9),
    ] {
        let out = exec(&rt, &[], c.id(), &["sh", "-c", script]);
        assert_eq!(out.exit_code(), expected, "{script}\n{}", out.describe());
    }
    // Output and the container keep going.
    let out = exec(
        &rt,
        &[],
        c.id(),
        &["sh", "-c", "echo out; echo err >&2; exit 4"],
    );
    assert_eq!(out.exit_code(), 4);
    assert_eq!(out.stdout_str(), "out\n");
    assert!(out.stderr_str().contains("err"), "{}", out.describe());
    assert_eq!(c.status(), "running");
}

#[test]
fn exec_into_a_stopped_container_fails_clearly() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .sh("echo ready > /shared/ready");
    let c = rt.create(&bundle);
    c.start();
    assert!(
        c.wait_status("stopped", std::time::Duration::from_secs(60)),
        "container did not stop: {}",
        c.state()
    );
    let out = exec(&rt, &[], c.id(), &["true"]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_str().contains("stopped"),
        "the error does not say the container is stopped\n{}",
        out.describe()
    );

    let out = exec(&rt, &[], &unique_id("missing"), &["true"]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_str().contains("does not exist"),
        "{}",
        out.describe()
    );
}

#[test]
fn exec_failures_exit_255_like_runc() {
    // runc exits 255 when exec itself fails (as opposed to the process exiting non-zero), and 1 for bad usage;
    // callers that run `exec` tell the two apart this way.
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let out = exec(&rt, &[], c.id(), &["/no/such/binary"]);
    assert_eq!(out.exit_code(), 255, "{}", out.describe());
    let out = exec(&rt, &[], &unique_id("missing"), &["true"]);
    assert_eq!(out.exit_code(), 255, "{}", out.describe());
}

#[test]
fn exec_failures_are_logged_as_json_lines() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let dir = TempDir::new("husk-test-log");
    let log = dir.join("runtime.log");
    let missing = unique_id("missing");
    let logged = |args: &[&str]| -> Output {
        let mut all: Vec<OsString> = vec![
            "--log".into(),
            log.clone().into(),
            "--log-format".into(),
            "json".into(),
            "exec".into(),
        ];
        all.extend(args.iter().map(OsString::from));
        rt.run(&all)
    };
    let out = logged(&[c.id(), "/no/such/binary"]);
    assert!(!out.status.success(), "{}", out.describe());
    let out = logged(&[&missing, "true"]);
    assert!(!out.status.success(), "{}", out.describe());

    let text = std::fs::read_to_string(&log).expect("no log file written");
    let entries: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for entry in &entries {
        let mut keys: Vec<&str> = entry
            .as_object()
            .unwrap_or_else(|| panic!("log line is not an object: {entry}"))
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["level", "msg", "time"], "{entry}");
        assert!(
            entry["time"].as_str().is_some_and(is_rfc3339),
            "time is not RFC 3339: {entry}"
        );
        assert!(
            entry["level"].is_string() && entry["msg"].is_string(),
            "{entry}"
        );
    }
    let errors: Vec<&str> = entries
        .iter()
        .filter(|e| e["level"] == "error")
        .filter_map(|e| e["msg"].as_str())
        .collect();
    assert!(
        errors.iter().any(|m| m.contains("/no/such/binary")),
        "no error naming the missing binary:\n{text}"
    );
    assert!(
        errors.iter().any(|m| m.contains("does not exist")),
        "no error for the missing container:\n{text}"
    );
}

#[test]
fn exec_runs_in_a_created_container() {
    // Before `start`, the init exists and so do the namespaces: runc lets exec in.
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = rt.create(&bundle);
    let out = exec_ok(
        &rt,
        &[],
        c.id(),
        &["sh", "-c", "echo hello; readlink /proc/self/ns/net"],
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hello"));
    assert_eq!(
        lines.next().map(str::to_owned),
        Some(proc_link(c.pid(), "ns/net"))
    );
    assert_eq!(c.status(), "created");
    assert!(
        bundle.read_shared("ready").is_none(),
        "exec started the container"
    );
}
