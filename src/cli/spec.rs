//! `husk spec`: a starter config.json for a bundle.

use std::path::PathBuf;

use clap::Args;

use super::CmdResult;

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Bundle directory to write config.json into (default: current directory).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
}

/// The default config: a `sh` on a terminal with a read-only root, the usual kernel
/// filesystems, a few capabilities, and new pid, network, ipc, uts and mount namespaces (the
/// library's, which containers made from images start from too).
pub fn default_spec() -> serde_json::Value {
    husk::default_spec_json()
}

pub fn run(a: SpecArgs) -> CmdResult {
    let path = a.bundle.join("config.json");
    if path.exists() {
        return Err(format!("File {} exists. Remove it first", path.display()).into());
    }
    let text = serde_json::to_string_pretty(&default_spec())?;
    let mut file = husk::hostfs::open(
        &path,
        std::fs::OpenOptions::new().write(true).create_new(true),
    )
    .map_err(|e| format!("write {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_spec_validates() {
        let spec: husk::oci_spec::runtime::Spec =
            serde_json::from_value(super::default_spec()).expect("parses as a runtime spec");
        assert_eq!(
            spec.process().as_ref().unwrap().args().as_ref().unwrap(),
            &["sh"]
        );
    }
}
