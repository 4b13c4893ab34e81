//! Installs a root filesystem tarball as an image and runs a container from it.
//!
//! ```text
//! cargo run --example install_and_run -- ROOTFS.tar.gz STORE_DIR STATE_DIR
//! ```
//!
//! The program is its own container init: `husk::init_if_requested()` comes first in `main`.

use std::io::Read;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    husk::init_if_requested();
    let args: Vec<String> = std::env::args().collect();
    let [_, tarball, store, state] = args.as_slice() else {
        return Err("usage: install_and_run ROOTFS.tar.gz STORE_DIR STATE_DIR".into());
    };
    let runtime = husk::Runtime::builder()
        .store(store)
        .state_root(state)
        .build();

    // Install (an update replaces an earlier version of the name).
    let image = runtime.install_image(
        husk::image::ImageSource::RootfsTar(tarball.into()),
        "example/busybox:1",
        &husk::image::InstallOptions::update(true),
    )?;
    println!("installed {} ({})", image.name, image.digest);
    for image in runtime.images()? {
        println!("in the store: {}", image.name);
    }

    // A container with its own writable layer over the image; its stdout comes back in a pipe.
    let opts = husk::ImageRunOptions::default().args([
        "sh",
        "-c",
        "echo hello from $(hostname) > /greeting; cat /greeting",
    ]);
    let create = husk::CreateOptions {
        stdio: husk::StdioConfig {
            stdout: husk::Stdio::Piped,
            ..Default::default()
        },
        ..Default::default()
    };
    // The guard deletes the container (and its writable layer) on any early return.
    let mut container = runtime
        .create_from_image("example-run", "example/busybox:1", &opts, &create)?
        .guard();
    let mut stdout = container.pipes().stdout.take().ok_or("no stdout pipe")?;
    container.start()?;
    let status = container.wait()?;
    let mut output = String::new();
    stdout.read_to_string(&mut output)?;
    print!("container said: {output}");
    println!("container ended with {status}");
    container.delete()?;

    // No container uses it any more: it can be removed.
    runtime.remove_image("example/busybox:1", false)?;
    println!("removed");
    Ok(())
}
