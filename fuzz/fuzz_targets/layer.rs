//! Image layer extraction: any bytes as a root filesystem tar (plain, gzip or zstd by their
//! magic), installed into a scratch store. Hostile entries must be refused, never panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use husk::image::{ImageSource, ImageStore, InstallOptions};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("husk-fuzz-layer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let tar = dir.join("layer.tar");
    std::fs::write(&tar, data).unwrap();
    let store = ImageStore::open(dir.join("store")).unwrap();
    if store.install(ImageSource::RootfsTar(tar), "fuzz", &InstallOptions::update(true)).is_ok() {
        let _ = store.remove("fuzz", true);
        let _ = store.prune();
    }
});
