//! Socket activation: fds 3..3+LISTEN_FDS of the caller reach the container with LISTEN_FDS
//! and LISTEN_PID=1 in its environment.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

use husk_testing::{require_root, Bundle, OutputExt, Runtime, TempDir};

#[test]
fn listen_fds_are_passed_with_their_environment() {
    require_root();
    let rt = Runtime::from_env(env!("CARGO_BIN_EXE_husk"));
    let dir = TempDir::new("husk-test-listen");
    let path = dir.join("socket-stand-in");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(b"activated\n")
        .unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let fd = file.as_raw_fd();
    let bundle = Bundle::new(&rt).sh("echo $LISTEN_FDS $LISTEN_PID; cat <&3");
    // LISTEN_PID must name the runtime itself: a shell sets it to its own pid, then execs.
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "LISTEN_PID=$$ exec \"$@\"", "sh"])
        .arg(rt.binary())
        .arg("--root")
        .arg(rt.root())
        .args(["run", "--bundle", bundle.path().to_str().unwrap()])
        .arg(husk_testing::unique_id("listen"));
    cmd.env("LISTEN_FDS", "1");
    // SAFETY: dup2/fcntl between fork and exec only touch descriptors of the child.
    unsafe {
        cmd.pre_exec(move || {
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if ok < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout_str(), "1 1\nactivated\n", "{}", out.describe());
}
