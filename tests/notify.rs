//! NOTIFY_SOCKET: the container gets a notify socket of its own; `start` waits for its
//! READY=1 and passes it on to the socket the caller named (what podman's --sdnotify=container
//! and systemd units rely on).

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

use husk_testing::{require_root, Bundle, Runtime, TempDir};

#[test]
fn ready_from_the_container_reaches_the_callers_notify_socket() {
    ready_reaches_the_callers_notify_socket(false);
}

/// The notify socket sits in the container's state directory, under a root only the host's
/// root may enter: a container whose root is an unprivileged host id still gets it.
#[test]
fn ready_reaches_the_callers_notify_socket_from_a_user_namespace() {
    ready_reaches_the_callers_notify_socket(true);
}

fn ready_reaches_the_callers_notify_socket(user_namespace: bool) {
    require_root();
    let rt = Runtime::from_env(env!("CARGO_BIN_EXE_husk"));
    let dir = TempDir::new("husk-test-notify");
    let host_socket = dir.join("notify.sock");
    let listener = UnixDatagram::bind(&host_socket).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The container says it is ready only after a while: `start` must wait for it.
    let mut bundle = Bundle::new(&rt);
    if user_namespace {
        // As podman and others do for a mapped container: the image belongs to its root.
        let chown = std::process::Command::new("chown")
            .args(["-R", "100000:100000"])
            .arg(bundle.rootfs())
            .status()
            .unwrap();
        assert!(chown.success(), "chown of the rootfs failed");
        bundle = bundle
            .add_namespace("user", None)
            .uid_mapping(0, 100000, 65536)
            .gid_mapping(0, 100000, 65536);
    }
    let bundle = bundle.sh("sleep 0.5; probe notify READY=1 STATUS=serving >/dev/null; sleep 100");
    let id = husk_testing::unique_id("notify");
    let mut create = rt.cmd(["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    create.env("NOTIFY_SOCKET", &host_socket);
    // Not output(): the container keeps whatever stdout it was given, and a pipe would never end.
    let status = create
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "create failed (user namespace: {user_namespace})"
    );
    let _guard = rt.guard(&id);
    let started = Instant::now();
    let mut start = rt.cmd(["start", &id]);
    start.env("NOTIFY_SOCKET", &host_socket);
    let status = start.stdout(Stdio::null()).status().unwrap();
    assert!(status.success(), "start failed");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "start returned before the container was ready"
    );
    let mut buf = [0u8; 512];
    let n = listener
        .recv(&mut buf)
        .expect("no READY=1 reached the caller's socket");
    let message = String::from_utf8_lossy(&buf[..n]);
    assert!(message.lines().any(|l| l == "READY=1"), "got {message:?}");
}
