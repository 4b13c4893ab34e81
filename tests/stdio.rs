//! Standard streams without a terminal: the container's stdin/stdout/stderr are the very descriptors the runtime
//! was given (no relay copying in between), for `run`, `create`/`start`, `run -d` and `exec`; and `--preserve-fds N`
//! passes fds 3..3+N (and no others) to the container's process.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

mod io_support;

use std::fs::File;
use std::io::Write;
use std::process::{Command, Stdio};

use husk_testing::{unique_id, wait_for, Bundle, OutputExt, Runtime, Spawned, TempDir};
use io_support::{
    inode, pipe, place_fds_from_3, read_pipe_to_end, runtime, sleeper, wait_child, WAIT,
};

/// Script for the container: record what the shell's fds 0-2 are (read through /proc/$$, from command
/// substitutions, so no redirection of the shell's own fds gets in the way), then pass one line from stdin to
/// stdout and write to stderr.
const PROBE: &str =
    "fds=\"$(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1) $(readlink /proc/$$/fd/2)\"; \
                     echo $fds > /shared/fds.tmp; mv /shared/fds.tmp /shared/fds; \
                     read line; echo out:$line; echo err:$line >&2";

/// Three pipes handed to a runtime command as its stdin, stdout and stderr.
struct StdioPipes {
    /// `pipe:[N]` of stdin, stdout, stderr.
    names: [String; 3],
    stdin: File,
    stdout: File,
    stderr: File,
}

impl StdioPipes {
    /// Creates the pipes and gives the child's ends to `cmd`.
    fn attach(cmd: &mut Command) -> StdioPipes {
        let (in_read, in_write) = pipe();
        let (out_read, out_write) = pipe();
        let (err_read, err_write) = pipe();
        let names = [&in_read, &out_read, &err_read].map(|f| format!("pipe:[{}]", inode(f)));
        cmd.stdin(Stdio::from(in_read))
            .stdout(Stdio::from(out_write))
            .stderr(Stdio::from(err_write));
        StdioPipes {
            names,
            stdin: in_write,
            stdout: out_read,
            stderr: err_read,
        }
    }

    /// Checks the fds the container recorded, sends it a line and checks what comes back on both pipes.
    /// `relayed`: the runtime is known to copy through pipes of its own instead (runc in the foreground).
    fn check(self, bundle: &Bundle, what: &str, relayed: bool) {
        assert!(
            wait_for(|| bundle.read_shared("fds").is_some(), WAIT),
            "{what}: the container did not run"
        );
        let recorded = bundle.read_shared("fds").unwrap();
        let recorded: Vec<&str> = recorded.split_whitespace().collect();
        if relayed {
            // runc 1.1.5 in the foreground gives the process pipes of its own and copies between them and its
            // stdio (see RUNC_DIFFERENCES.md): pipes, but not the caller's.
            assert_eq!(recorded.len(), 3, "{what}: {recorded:?}");
            for (inside, given) in recorded.iter().zip(&self.names) {
                assert!(
                    inside.starts_with("pipe:[") && inside != given,
                    "{what}: expected runc's relay pipes, got {recorded:?} (given {:?})",
                    self.names
                );
            }
        } else {
            assert_eq!(
                recorded, self.names,
                "{what}: the container's fds 0, 1, 2 are not the pipes the runtime was given"
            );
        }
        let StdioPipes {
            mut stdin,
            stdout,
            stderr,
            ..
        } = self;
        stdin.write_all(b"through the pipe\n").unwrap();
        drop(stdin);
        let err_reader = std::thread::spawn(move || read_pipe_to_end(&stderr, WAIT));
        let out = read_pipe_to_end(&stdout, WAIT);
        let err = err_reader.join().unwrap();
        assert_eq!(out, "out:through the pipe\n", "{what}: stdout");
        assert!(
            err.contains("err:through the pipe\n"),
            "{what}: stderr {err:?}"
        );
    }
}

fn probe_bundle(rt: &Runtime) -> Bundle {
    Bundle::new(rt).with_shared_dir().sh(PROBE)
}

#[test]
fn foreground_run_hands_its_own_stdio_to_the_container() {
    let rt = runtime();
    let bundle = probe_bundle(&rt);
    let id = unique_id("stdio");
    let _guard = rt.guard(&id);
    let mut cmd = rt.cmd(["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    let pipes = StdioPipes::attach(&mut cmd);
    let mut child = cmd.spawn().expect("spawn run");
    drop(cmd);
    pipes.check(&bundle, "run", rt.is_runc());
    let status = wait_child(&mut child, WAIT, "run");
    assert!(status.success(), "run: {status}");
}

#[test]
fn create_hands_its_stdio_to_the_container() {
    let rt = runtime();
    let bundle = probe_bundle(&rt);
    let id = unique_id("stdio");
    let guard = rt.guard(&id);
    let mut cmd = rt.cmd(["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    let pipes = StdioPipes::attach(&mut cmd);
    let mut child = cmd.spawn().expect("spawn create");
    drop(cmd);
    let status = wait_child(&mut child, WAIT, "create");
    assert!(status.success(), "create: {status}");
    // `start` has stdio of its own: the container must still use create's.
    guard.start();
    pipes.check(&bundle, "create + start", false);
}

#[test]
fn detached_run_hands_its_stdio_to_the_container() {
    let rt = runtime();
    let bundle = probe_bundle(&rt);
    let id = unique_id("stdio");
    let _guard = rt.guard(&id);
    let mut cmd = rt.cmd([
        "run",
        "-d",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    let pipes = StdioPipes::attach(&mut cmd);
    let mut child = cmd.spawn().expect("spawn run -d");
    drop(cmd);
    let status = wait_child(&mut child, WAIT, "run -d");
    assert!(status.success(), "run -d: {status}");
    pipes.check(&bundle, "run -d", false);
}

#[test]
fn exec_hands_its_stdio_to_the_process() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = rt.create(&bundle);
    c.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));
    for detach in [false, true] {
        let _ = std::fs::remove_file(bundle.shared_dir().join("fds"));
        let mut args = vec!["exec"];
        if detach {
            args.push("-d");
        }
        args.extend([c.id(), "sh", "-c", PROBE]);
        let mut cmd = rt.cmd(&args);
        let pipes = StdioPipes::attach(&mut cmd);
        let mut child = cmd.spawn().expect("spawn exec");
        drop(cmd);
        if detach {
            let status = wait_child(&mut child, WAIT, "exec -d");
            assert!(status.success(), "exec -d: {status}");
        }
        let what = if detach { "exec -d" } else { "exec" };
        pipes.check(&bundle, what, rt.is_runc() && !detach);
        let status = wait_child(&mut child, WAIT, "exec");
        assert!(status.success(), "exec: {status}");
    }
}

/// Two files with known contents, opened for reading.
fn fd_sources(dir: &TempDir) -> (File, File) {
    std::fs::write(dir.join("three"), "content of fd three\n").unwrap();
    std::fs::write(dir.join("four"), "content of fd four\n").unwrap();
    (
        File::open(dir.join("three")).unwrap(),
        File::open(dir.join("four")).unwrap(),
    )
}

const FD_PROBE: &str = "cat /proc/self/fd/3; cat /proc/self/fd/4 2>/dev/null || echo no-fd-4";

#[test]
fn run_preserve_fds_passes_extra_descriptors() {
    let rt = runtime();
    let dir = TempDir::new("husk-test-fds");
    let (three, four) = fd_sources(&dir);
    let bundle = Bundle::new(&rt).sh(FD_PROBE);
    for (n, expected) in [
        ("1", "content of fd three\nno-fd-4\n"),
        ("2", "content of fd three\ncontent of fd four\n"),
    ] {
        let id = unique_id("fds");
        let _guard = rt.guard(&id);
        let mut cmd = rt.cmd([
            "run",
            "--preserve-fds",
            n,
            "--bundle",
            bundle.path().to_str().unwrap(),
            &id,
        ]);
        place_fds_from_3(&mut cmd, &[&three, &four]);
        let out = Spawned::start(&mut cmd).wait(WAIT);
        assert!(out.status.success(), "{}", out.describe());
        assert_eq!(out.stdout_str(), expected, "--preserve-fds {n}");
    }
    // Without the flag nothing beyond stdio gets in.
    let id = unique_id("fds");
    let _guard = rt.guard(&id);
    let mut cmd = rt.cmd(["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    place_fds_from_3(&mut cmd, &[&three, &four]);
    let out = Spawned::start(&mut cmd).wait(WAIT);
    assert!(
        !out.stdout_str().contains("content of fd"),
        "fds leaked without --preserve-fds\n{}",
        out.describe()
    );
}

#[test]
fn create_preserve_fds_passes_extra_descriptors() {
    let rt = runtime();
    let dir = TempDir::new("husk-test-fds");
    let (three, four) = fd_sources(&dir);
    let bundle = Bundle::new(&rt).with_shared_dir().sh(&format!(
        "({FD_PROBE}) > /shared/out.tmp; mv /shared/out.tmp /shared/out"
    ));
    let id = unique_id("fds");
    let guard = rt.guard(&id);
    let mut cmd = rt.cmd([
        "create",
        "--preserve-fds",
        "1",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    place_fds_from_3(&mut cmd, &[&three, &four]);
    let out = Spawned::start(&mut cmd).wait(WAIT);
    assert!(out.status.success(), "{}", out.describe());
    guard.start();
    assert!(
        wait_for(|| bundle.read_shared("out").is_some(), WAIT),
        "container did not run"
    );
    assert_eq!(
        bundle.read_shared("out").unwrap(),
        "content of fd three\nno-fd-4\n"
    );
}
