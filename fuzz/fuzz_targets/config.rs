//! config.json parsing and validation: any bytes as config.json of a bundle whose rootfs exists.
//! Validation must answer with an error, never panic, and never write to the host.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn bundle() -> &'static PathBuf {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("husk-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rootfs/proc")).unwrap();
        std::fs::create_dir_all(dir.join("rootfs/dev")).unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let bundle = bundle();
    // Through the file, as `create` reads it (size limits, parse errors naming the field).
    std::fs::write(bundle.join("config.json"), data).unwrap();
    let _ = husk::config::ContainerConfig::load(bundle, &husk::CreateOptions::default());
});
