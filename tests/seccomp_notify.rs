//! SCMP_ACT_NOTIFY: the runtime hands the notify fd and the container's state to the agent at
//! `linux.seccomp.listenerPath`, and the agent answers the container's system calls.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use husk_testing::{require_root, Bundle, OutputExt, Runtime, TempDir};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;

/// `struct seccomp_notif` and `struct seccomp_notif_resp` of linux/seccomp.h.
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// The agent: takes one connection, then answers every notification with `errno`.
fn agent(listener: UnixListener, errno: i32) -> (serde_json::Value, u32) {
    let (stream, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: a descriptor received through SCM_RIGHTS is ours.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let len = msg.bytes;
    let state: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
    let fd = fd.expect("no notify fd with the state");
    let mut answered = 0;
    loop {
        let mut req = Notif::default();
        // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills a seccomp_notif we own.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut req) } < 0 {
            // The container is gone: no more notifications.
            return (state, answered);
        }
        let resp = NotifResp {
            id: req.id,
            val: 0,
            error: -errno,
            flags: 0,
        };
        // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads the response we own.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp) };
        answered += 1;
    }
}

#[test]
fn notify_fd_reaches_the_agent_which_answers_syscalls() {
    require_root();
    let rt = Runtime::from_env(env!("CARGO_BIN_EXE_husk"));
    let dir = TempDir::new("husk-test-agent");
    let socket = dir.join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let agent = std::thread::spawn(move || agent(listener, libc::EXDEV));
    let bundle = Bundle::new(&rt)
        .set(
            "/linux/seccomp",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": socket,
                "listenerMetadata": "from-the-test",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
            }),
        )
        .sh("mkdir /tmp/made 2>&1; echo rc=$?");
    let out = rt.run_bundle(&bundle);
    let (state, answered) = agent.join().unwrap();
    let stdout = out.stdout_str();
    assert!(stdout.contains("rc=1"), "{}", out.describe());
    assert!(
        stdout.contains("Invalid cross-device link"),
        "the agent's errno did not arrive: {stdout}"
    );
    assert!(answered >= 1, "no notification reached the agent");
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], json!("from-the-test"), "{state}");
    assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{state}");
    assert!(state["state"]["id"].is_string(), "{state}");
    assert_eq!(state["state"]["bundle"], json!(bundle.path()), "{state}");
}
