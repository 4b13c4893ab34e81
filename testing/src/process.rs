//! Spawning host commands with captured output and a deadline.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Convenience accessors for [`std::process::Output`].
pub trait OutputExt {
    /// Standard output, lossily decoded as UTF-8.
    fn stdout_str(&self) -> String;
    /// Standard error, lossily decoded as UTF-8.
    fn stderr_str(&self) -> String;
    /// The exit code, or `128 + signal` when the process was killed by a signal (the shell's convention).
    fn exit_code(&self) -> i32;
    /// A multi-line description (status, stdout, stderr) for assertion messages.
    fn describe(&self) -> String;
}

impl OutputExt for Output {
    fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    fn exit_code(&self) -> i32 {
        shell_exit_code(self.status)
    }

    fn describe(&self) -> String {
        format!(
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout_str(),
            self.stderr_str()
        )
    }
}

fn shell_exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => -1,
    }
}

/// A capture file that has no name on disk: created in the temp dir and unlinked at once, so nothing is left behind
/// even if the test aborts. Its writers (the child, and any container process that inherits the child's stdio) keep
/// it alive as long as they need it.
fn anonymous_file() -> File {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "husk-test-capture-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot create capture file {}: {e}", path.display()));
    let _ = std::fs::remove_file(&path);
    file
}

fn read_all(file: &mut File) -> Vec<u8> {
    let mut data = Vec::new();
    file.seek(SeekFrom::Start(0)).expect("seek capture file");
    file.read_to_end(&mut data).expect("read capture file");
    data
}

/// A running host process whose standard output and error go to anonymous files (never pipes).
///
/// Files, unlike pipes, never make the reader wait for a detached container that inherited the runtime's stdio: the
/// output is complete as soon as the spawned process itself exits. Standard input is `/dev/null`.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    stdout: File,
    stderr: File,
    description: String,
}

impl Spawned {
    /// Spawns `cmd` (its stdio settings are replaced). Panics if it cannot be started.
    pub fn start(cmd: &mut Command) -> Spawned {
        let stdout = anonymous_file();
        let stderr = anonymous_file();
        let description = format!("{cmd:?}");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout.try_clone().expect("dup capture file")))
            .stderr(Stdio::from(stderr.try_clone().expect("dup capture file")))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {description}: {e}"));
        Spawned {
            child,
            stdout,
            stderr,
            description,
        }
    }

    /// The host pid of the spawned process.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }

    /// Sends `signal` to the spawned process (only to it, never to its process group).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child, so it cannot have
        // been recycled for another process.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(
            rc,
            0,
            "kill({}, {signal}) failed: {}",
            self.pid(),
            std::io::Error::last_os_error()
        );
    }

    /// Returns the exit status if the process has already exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Output captured so far, without waiting.
    pub fn output_so_far(&mut self) -> (String, String) {
        (
            String::from_utf8_lossy(&read_all(&mut self.stdout)).into_owned(),
            String::from_utf8_lossy(&read_all(&mut self.stderr)).into_owned(),
        )
    }

    /// Waits for the process to exit and returns its output. If it is still running after `timeout`, it is
    /// SIGKILLed and this panics with whatever it printed.
    pub fn wait(self, timeout: Duration) -> Output {
        let description = self.description.clone();
        match self.wait_or_kill(timeout) {
            Ok(output) => output,
            Err(partial) => panic!(
                "timed out after {timeout:?}: {description}\n{}",
                partial.describe()
            ),
        }
    }

    /// Waits for the process to exit. If it is still running after `timeout`, it is SIGKILLed and its partial
    /// output is returned as the error. Never panics on timeout, so it is usable from `Drop`.
    pub fn wait_or_kill(mut self, timeout: Duration) -> Result<Output, Output> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Ok(self.collect(status));
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let status = self.child.wait().expect("wait for killed child");
                return Err(self.collect(status));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn collect(&mut self, status: ExitStatus) -> Output {
        Output {
            status,
            stdout: read_all(&mut self.stdout),
            stderr: read_all(&mut self.stderr),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // A Spawned dropped without wait() (e.g. a panicking test) must not leave a running child behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to completion with stdin from `/dev/null`, capturing its output; panics after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    Spawned::start(cmd).wait(timeout)
}
