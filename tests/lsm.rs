//! AppArmor and SELinux settings: applied where the host has the LSM, a clear error where it
//! does not (never a container silently running unconfined). This host has neither, so the
//! tests check the refusal; they say so and fail if the host turns out to have them.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use husk_testing::{require_root, Bundle, OutputExt, Runtime};
use serde_json::json;

fn runtime() -> Runtime {
    require_root();
    assert!(
        std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_err()
            && !std::path::Path::new("/sys/fs/selinux/enforce").exists(),
        "this host has AppArmor or SELinux: these tests expect neither and need a variant that checks the label from inside"
    );
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

#[test]
fn apparmor_profile_without_apparmor_is_a_clear_error() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .set("/process/apparmorProfile", json!("husk-test"))
        .sh("echo ran");
    let out = rt.run_bundle(&bundle);
    assert!(!out.status.success(), "{}", out.describe());
    // runc 1.1.5 fails later, on the write to /proc/self/attr/exec, with a vaguer message.
    if !rt.is_runc() {
        assert!(
            out.stderr_str().contains("apparmorProfile") && out.stderr_str().contains("AppArmor"),
            "{}",
            out.describe()
        );
    }
    assert!(!out.stdout_str().contains("ran"));
    assert!(rt.list_ids().is_empty());
}

#[test]
fn selinux_labels_without_selinux_are_a_clear_error() {
    let rt = runtime();
    for (pointer, field) in [
        ("/process/selinuxLabel", "selinuxLabel"),
        ("/linux/mountLabel", "mountLabel"),
    ] {
        let bundle = Bundle::new(&rt)
            .set(pointer, json!("system_u:system_r:container_t:s0"))
            .sh("echo ran");
        let out = rt.run_bundle(&bundle);
        assert!(!out.status.success(), "{field}: {}", out.describe());
        if !rt.is_runc() {
            assert!(
                out.stderr_str().contains(field) && out.stderr_str().contains("SELinux"),
                "{}",
                out.describe()
            );
        }
        assert!(rt.list_ids().is_empty());
    }
}
