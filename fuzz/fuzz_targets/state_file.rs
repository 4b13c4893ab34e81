//! State-file reading: any bytes as a container's state.json, read by `state` and `list`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("husk-fuzz-state-{}", std::process::id()));
        std::fs::create_dir_all(root.join("fz")).unwrap();
        root
    })
}

fuzz_target!(|data: &[u8]| {
    let root = root();
    std::fs::write(root.join("fz/state.json"), data).unwrap();
    let runtime = husk::Runtime::new(root);
    if let Ok(container) = runtime.peek("fz") {
        let _ = container.status();
        let _ = serde_json::to_vec(&container.state());
    }
    let _ = runtime.list();
});
