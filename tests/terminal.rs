//! Terminal containers: `process.terminal` with `--console-socket` (the pty master goes to the caller; inside, the
//! standard streams are the pty, `consoleSize` is applied and /dev/console is the pty), and `run` in the foreground
//! from an interactive terminal (driven in tmux): I/O relay, raw mode on the caller's terminal, window resizes and
//! the exit code.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

mod io_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use husk_testing::{unique_id, Bundle, ContainerGuard, OutputExt, Runtime, TempDir};
use io_support::{
    join_console, pty_number, read_pty_until, runtime, ConsoleSocket, ReceivedConsole, WAIT,
};
use serde_json::json;

/// A bundle whose process has a terminal.
fn terminal_bundle(rt: &Runtime, script: &str) -> Bundle {
    Bundle::new(rt)
        .set("/process/terminal", json!(true))
        .sh(script)
}

/// `create --console-socket` + `start`; returns the guard and the pty master the runtime sent.
fn create_with_console<'rt>(
    rt: &'rt Runtime,
    bundle: &Bundle,
) -> (ContainerGuard<'rt>, ReceivedConsole) {
    let socket = ConsoleSocket::new();
    let receiver = socket.receive_in_background();
    let guard = rt.guard(unique_id("tty"));
    rt.run_ok([
        "create",
        "--console-socket",
        socket.path().to_str().unwrap(),
        "--bundle",
        bundle.path().to_str().unwrap(),
        guard.id(),
    ]);
    let console = join_console(receiver);
    guard.start();
    (guard, console)
}

#[test]
fn console_socket_receives_the_pty_master_of_the_container_terminal() {
    let rt = runtime();
    let bundle = terminal_bundle(
        &rt,
        "tty; for fd in 0 1 2; do test -t $fd && echo fd$fd-is-tty; done; \
         read line; echo got:$line; echo end",
    );
    let (_c, console) = create_with_console(&rt, &bundle);
    let before_input = read_pty_until(&console.master, WAIT, |t| t.contains("fd2-is-tty"));
    let tty = before_input.lines().next().unwrap_or_default();
    assert_eq!(
        tty,
        format!("/dev/pts/{}", pty_number(&console.master)),
        "the container's terminal is not the pty whose master was sent:\n{before_input}"
    );
    for fd in 0..3 {
        assert!(
            before_input.contains(&format!("fd{fd}-is-tty")),
            "fd {fd} of the container is not a terminal:\n{before_input}"
        );
    }
    // Input typed on the master reaches the container's stdin.
    (&console.master).write_all(b"typed text\n").unwrap();
    let rest = read_pty_until(&console.master, WAIT, |t| t.contains("end\n"));
    assert!(rest.contains("got:typed text\n"), "{rest:?}");
}

#[test]
fn console_size_is_applied() {
    let rt = runtime();
    let bundle = terminal_bundle(&rt, "stty size; echo end").set(
        "/process/consoleSize",
        json!({ "height": 37, "width": 111 }),
    );
    let (_c, console) = create_with_console(&rt, &bundle);
    let text = read_pty_until(&console.master, WAIT, |t| t.contains("end\n"));
    assert_eq!(text.lines().next(), Some("37 111"), "{text:?}");
}

#[test]
fn dev_console_is_the_container_pty() {
    let rt = runtime();
    let bundle = terminal_bundle(
        &rt,
        "stat -c '%F %t:%T' /dev/console; stat -c '%F %t:%T' $(tty); echo end",
    );
    let (_c, console) = create_with_console(&rt, &bundle);
    let text = read_pty_until(&console.master, WAIT, |t| t.contains("end\n"));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "{text:?}");
    assert!(
        lines[0].starts_with("character special file"),
        "/dev/console is not a character device: {text:?}"
    );
    assert_eq!(
        lines[0], lines[1],
        "/dev/console is not the container's pty: {text:?}"
    );
    // Unix98 ptys are character devices with major 136..143 (hex 88..8f).
    let major = lines[1]
        .rsplit(' ')
        .next()
        .and_then(|d| d.split(':').next())
        .and_then(|m| u32::from_str_radix(m, 16).ok());
    assert!(
        major.is_some_and(|m| (136..=143).contains(&m)),
        "not a pty slave: {text:?}"
    );
}

#[test]
fn terminal_without_console_socket_is_refused_for_create() {
    // A detached terminal container needs somewhere to send the master.
    let rt = runtime();
    let bundle = terminal_bundle(&rt, "echo ran");
    let id = unique_id("tty");
    let _guard = rt.guard(&id);
    let out = rt.run(["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_str().contains("console"),
        "the error does not mention the console socket\n{}",
        out.describe()
    );
    assert!(rt.try_state(&id).is_none(), "a container was left behind");
}

/// A private tmux server (its own socket) running one session; killed on drop.
struct Tmux {
    _dir: TempDir,
    socket: PathBuf,
    status_file: PathBuf,
}

const SESSION: &str = "husk-test";

impl Tmux {
    /// Starts `command` (a shell command line) in a detached session of `cols` x `rows`. When the command ends, its
    /// exit status is written to [`Tmux::status_file`] and the pane stays open for inspection.
    fn start(command: &str, cols: u16, rows: u16) -> Tmux {
        let dir = TempDir::new("husk-test-tmux");
        let socket = dir.join("tmux.sock");
        let status_file = dir.join("status");
        let pane = format!(
            "{command}; echo $? > {status}; echo runtime-exited; exec sleep 1000",
            status = status_file.display()
        );
        let tmux = Tmux {
            _dir: dir,
            socket,
            status_file,
        };
        let cols = cols.to_string();
        let rows = rows.to_string();
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-x",
            &cols,
            "-y",
            &rows,
            &pane,
        ]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = husk_testing::run_with_timeout(
            Command::new("tmux").arg("-S").arg(&self.socket).args(args),
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "tmux {args:?} failed (is tmux installed?)\n{}",
            out.describe()
        );
        out.stdout_str()
    }

    fn send_keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", SESSION];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// The pane's whole history and screen.
    fn capture(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-", "-t", SESSION])
    }

    /// Waits until the captured pane satisfies `done`; panics with the pane's content on timeout.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.capture();
            if done(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; pane:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pane_tty(&self) -> PathBuf {
        PathBuf::from(
            self.run(&["display-message", "-p", "-t", SESSION, "#{pane_tty}"])
                .trim(),
        )
    }

    fn resize(&self, cols: u16, rows: u16) {
        self.run(&[
            "resize-window",
            "-t",
            SESSION,
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
    }

    fn status_file(&self) -> &Path {
        &self.status_file
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// Settings of a terminal as printed by `stty -a`, e.g. `["icanon", "-echo", ...]`.
fn stty_flags(tty: &Path) -> Vec<String> {
    let out = husk_testing::run_with_timeout(
        Command::new("stty").arg("-F").arg(tty).arg("-a"),
        Duration::from_secs(10),
    );
    assert!(
        out.status.success(),
        "stty -F {}: {}",
        tty.display(),
        out.describe()
    );
    out.stdout_str()
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A foreground `run` of an interactive shell with a terminal, inside a tmux pane of 100 x 30.
fn foreground_shell(rt: &Runtime, bundle: &Bundle, id: &str) -> Tmux {
    let command = format!(
        "{} --root {} run --bundle {} {id}",
        rt.binary().display(),
        rt.root().display(),
        bundle.path().display()
    );
    let tmux = Tmux::start(&command, 100, 30);
    // The typed line is echoed too: wait for what only the command's output contains.
    tmux.send_keys(&["echo shell-$((1+1))-up", "Enter"]);
    tmux.wait_for("the container shell", |t| t.contains("shell-2-up"));
    tmux
}

fn interactive_bundle(rt: &Runtime) -> Bundle {
    Bundle::new(rt)
        .set("/process/terminal", json!(true))
        .env(["PATH=/bin:/sbin", "TERM=xterm", "PS1=ctr# "])
        .args(["sh"])
}

#[test]
fn foreground_run_relays_terminal_io_and_exit_code() {
    let rt = runtime();
    let bundle = interactive_bundle(&rt);
    let id = unique_id("fgtty");
    let _guard = rt.guard(&id);
    let tmux = foreground_shell(&rt, &bundle, &id);
    // Output of a command typed into the pane comes back from the container.
    tmux.send_keys(&["cat /etc/hostname; tty", "Enter"]);
    let text = tmux.wait_for("command output", |t| t.contains("/dev/pts/"));
    assert!(text.contains("ctr# "), "no container prompt:\n{text}");
    tmux.send_keys(&["exit 7", "Enter"]);
    let text = tmux.wait_for("the runtime to exit", |t| t.contains("runtime-exited"));
    let status = std::fs::read_to_string(tmux.status_file()).unwrap_or_default();
    assert_eq!(status.trim(), "7", "exit code not passed on; pane:\n{text}");
}

#[test]
fn foreground_run_puts_the_callers_terminal_in_raw_mode() {
    let rt = runtime();
    let bundle = interactive_bundle(&rt);
    let id = unique_id("fgtty");
    let _guard = rt.guard(&id);
    let tmux = foreground_shell(&rt, &bundle, &id);
    let pane = tmux.pane_tty();
    let flags = stty_flags(&pane);
    for raw in ["-icanon", "-echo", "-isig"] {
        assert!(
            flags.iter().any(|f| f == raw),
            "the caller's terminal is not in raw mode ({raw} missing): {flags:?}"
        );
    }
    // In raw mode ^C is a character for the container's terminal: it interrupts the container's foreground job,
    // not the runtime.
    tmux.send_keys(&["sleep 1000", "Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.send_keys(&["C-c"]);
    tmux.send_keys(&["echo after-$((2+3))", "Enter"]);
    tmux.wait_for("the shell after ^C", |t| t.contains("after-5"));
    assert!(
        !tmux.status_file().exists(),
        "^C ended the runtime instead of the container's job"
    );
    tmux.send_keys(&["exit", "Enter"]);
    tmux.wait_for("the runtime to exit", |t| t.contains("runtime-exited"));
    // The terminal settings are restored on exit.
    let flags = stty_flags(&pane);
    for cooked in ["icanon", "echo", "isig"] {
        assert!(
            flags.iter().any(|f| f == cooked),
            "terminal not restored ({cooked} missing): {flags:?}"
        );
    }
}

#[test]
fn foreground_run_passes_window_resizes_on() {
    let rt = runtime();
    let bundle = interactive_bundle(&rt);
    let id = unique_id("fgtty");
    let _guard = rt.guard(&id);
    let tmux = foreground_shell(&rt, &bundle, &id);
    tmux.send_keys(&["echo size=$(stty size)", "Enter"]);
    let text = tmux.wait_for("the initial size", |t| t.contains("size=3"));
    assert!(
        text.contains("size=30 100"),
        "initial window size not copied:\n{text}"
    );
    tmux.resize(120, 40);
    // The resize reaches the runtime as SIGWINCH; give the container's terminal a moment to follow.
    let deadline = Instant::now() + WAIT;
    loop {
        tmux.send_keys(&["echo resized=$(stty size)", "Enter"]);
        std::thread::sleep(Duration::from_millis(200));
        let text = tmux.capture();
        if text.contains("resized=40 120") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "window resize not passed on:\n{text}"
        );
    }
    tmux.send_keys(&["exit", "Enter"]);
    tmux.wait_for("the runtime to exit", |t| t.contains("runtime-exited"));
}
