//! Capabilities seen from inside the container: what the spec grants works, what it does not
//! grant is refused by the kernel.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use husk_testing::{require_root, Bundle, Runtime};
use serde_json::{json, Value};

fn raw_socket_errno(rt: &Runtime, caps: &[&str]) -> Value {
    let bundle = Bundle::new(rt)
        .set(
            "/process/capabilities",
            json!({"bounding": caps, "effective": caps, "permitted": caps}),
        )
        // socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
        .args(["probe", "syscall", "socket", "2", "3", "1"]);
    let out = rt.run_bundle_ok(&bundle);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    report["errno"].clone()
}

#[test]
fn raw_socket_needs_cap_net_raw() {
    require_root();
    let rt = Runtime::from_env(env!("CARGO_BIN_EXE_husk"));
    assert_eq!(
        raw_socket_errno(&rt, &["CAP_KILL"]),
        json!(libc::EPERM),
        "raw socket without CAP_NET_RAW"
    );
    assert_eq!(
        raw_socket_errno(&rt, &["CAP_KILL", "CAP_NET_RAW"]),
        Value::Null,
        "raw socket with CAP_NET_RAW"
    );
}
