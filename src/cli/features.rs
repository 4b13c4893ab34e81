//! `husk features`: what this build supports, built from the validator's own tables.

use husk::config::{
    HOOKS, MOUNT_FLAG_OPTIONS, NAMESPACES, OCI_VERSION_MAX, OCI_VERSION_MIN, PROPAGATION_OPTIONS,
    RECURSIVE_MOUNT_OPTIONS,
};
use serde_json::json;

use husk_init::security::seccomp;

use super::CmdResult;

pub fn features() -> serde_json::Value {
    let mut mount_options: Vec<&str> = MOUNT_FLAG_OPTIONS
        .iter()
        .map(|(n, _, _)| *n)
        .chain(PROPAGATION_OPTIONS.iter().map(|(n, _)| *n))
        .chain(RECURSIVE_MOUNT_OPTIONS.iter().map(|(n, _, _)| *n))
        .collect();
    mount_options.sort_unstable();
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": HOOKS,
        "mountOptions": mount_options,
        "linux": {
            "namespaces": NAMESPACES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": seccomp::ACTIONS,
                "operators": seccomp::OPERATORS,
                "archs": seccomp::ARCHES,
                "knownFlags": seccomp::supported_flags(),
                "supportedFlags": seccomp::supported_flags()
            },
            "capabilities": husk_init::security::caps::known_capability_names(),
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {}
    })
}

pub fn run() -> CmdResult {
    println!("{}", serde_json::to_string_pretty(&features())?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option the validator accepts is advertised, and nothing else.
    #[test]
    fn features_match_validator_tables() {
        let f = features();
        let listed: Vec<&str> = f["mountOptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for (name, _, _) in MOUNT_FLAG_OPTIONS {
            assert!(listed.contains(name), "{name} missing");
        }
        for (name, _) in PROPAGATION_OPTIONS {
            assert!(listed.contains(name), "{name} missing");
        }
        for (name, _, _) in RECURSIVE_MOUNT_OPTIONS {
            assert!(listed.contains(name), "{name} missing");
        }
        assert_eq!(
            listed.len(),
            MOUNT_FLAG_OPTIONS.len() + PROPAGATION_OPTIONS.len() + RECURSIVE_MOUNT_OPTIONS.len()
        );
        let ns = f["linux"]["namespaces"].as_array().unwrap();
        assert_eq!(ns.len(), NAMESPACES.len());
        for cap in f["linux"]["capabilities"].as_array().unwrap() {
            let name = cap.as_str().unwrap();
            husk_init::security::parse_capability_name(
                husk_init::security::CapabilitySet::Bounding,
                name,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // Each advertised namespace name is one config.json accepts.
        for n in ns {
            let json = serde_json::json!({"type": n});
            serde_json::from_value::<husk::oci_spec::runtime::LinuxNamespace>(json)
                .unwrap_or_else(|e| panic!("{n} rejected: {e}"));
        }
    }
}
