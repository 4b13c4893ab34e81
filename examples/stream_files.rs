//! Streams files into a container from an image and results back out, as tar streams: the
//! input is built in memory, the container works on it, and its output directory comes back
//! as a tar that is read without touching the host's disk.
//!
//! ```text
//! cargo run --example stream_files -- ROOTFS.tar.gz STORE_DIR STATE_DIR
//! ```

use std::io::Read;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    husk::init_if_requested();
    let args: Vec<String> = std::env::args().collect();
    let [_, tarball, store, state] = args.as_slice() else {
        return Err("usage: stream_files ROOTFS.tar.gz STORE_DIR STATE_DIR".into());
    };
    let runtime = husk::Runtime::builder()
        .store(store)
        .state_root(state)
        .build();
    runtime.install_image(
        husk::image::ImageSource::RootfsTar(tarball.into()),
        "worker",
        &husk::image::InstallOptions::update(true),
    )?;

    // A container that waits for its input (it sleeps until it is stopped).
    let opts = husk::ImageRunOptions::default().args([
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 1; done",
    ]);
    let mut worker = runtime
        .create_from_image("example-stream", "worker", &opts, &Default::default())?
        .guard();
    worker.start()?;

    // In: a tar stream made in memory, unpacked into /work/in of the container.
    let mut input = tar::Builder::new(Vec::new());
    for (name, text) in [
        ("fruit.txt", "pear\napple\nfig\n"),
        ("veg.txt", "leek\nkale\n"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        input.append_data(&mut header, name, text.as_bytes())?;
    }
    let input = input.into_inner()?;
    worker.copy_in(Path::new("/work/in"), &input[..])?;
    println!("copied in {} bytes of tar", input.len());

    // The work: every input sorted, and a line count, into /work/out.
    let mut process = husk::oci_spec::runtime::Process::default();
    process.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "mkdir -p /work/out && for f in /work/in/*; do sort \"$f\" > /work/out/$(basename \"$f\"); done \
         && cat /work/in/* | wc -l > /work/out/lines"
            .into(),
    ]));
    process.set_env(Some(vec!["PATH=/bin:/usr/bin".into()]));
    let status = worker.exec(&process, &Default::default())?.wait()?;
    if !status.success() {
        return Err(format!("the work ended with {status}").into());
    }

    // Out: /work/out as a tar stream, read entry by entry.
    let mut output = Vec::new();
    worker.copy_out(Path::new("/work/out"), &mut output)?;
    let mut archive = tar::Archive::new(&output[..]);
    let mut files = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path()?.display().to_string();
        let mut text = String::new();
        entry.read_to_string(&mut text)?;
        files.push((name, text));
    }
    files.sort();
    for (name, text) in &files {
        println!("out {name}: {}", text.trim().replace('\n', ","));
    }

    worker.stop(std::time::Duration::from_secs(10))?;
    worker.delete()?;
    println!("done");
    Ok(())
}
