//! A long-lived container from an image, with several commands run in it by `exec`, then
//! stopped and deleted.
//!
//! ```text
//! cargo run --example long_lived_exec -- ROOTFS.tar.gz STORE_DIR STATE_DIR
//! ```

use std::io::Read;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    husk::init_if_requested();
    let args: Vec<String> = std::env::args().collect();
    let [_, tarball, store, state] = args.as_slice() else {
        return Err("usage: long_lived_exec ROOTFS.tar.gz STORE_DIR STATE_DIR".into());
    };
    let runtime = husk::Runtime::builder()
        .store(store)
        .state_root(state)
        .build();
    runtime.install_image(
        husk::image::ImageSource::RootfsTar(tarball.into()),
        "service",
        &husk::image::InstallOptions::update(true),
    )?;

    // The main process keeps a counter file up to date until it is stopped.
    let opts = husk::ImageRunOptions::default().args([
        "sh",
        "-c",
        "trap 'exit 0' TERM; n=0; while :; do n=$((n + 1)); echo $n > /count; sleep 0.1; done",
    ]);
    let mut service = runtime
        .create_from_image("example-service", "service", &opts, &Default::default())?
        .guard();
    service.start()?;

    for round in 1..=3 {
        let mut process = husk::oci_spec::runtime::Process::default();
        process.set_args(Some(vec![
            "sh".into(),
            "-c".into(),
            format!("echo round {round}: count is $(cat /count 2>/dev/null || echo 0)"),
        ]));
        process.set_env(Some(vec!["PATH=/bin:/usr/bin".into()]));
        let exec_opts = husk::ExecOptions {
            stdio: husk::StdioConfig {
                stdout: husk::Stdio::Piped,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut p = service.exec(&process, &exec_opts)?;
        let mut out = String::new();
        if let Some(mut stdout) = p.pipes().stdout.take() {
            stdout.read_to_string(&mut out)?;
        }
        let status = p.wait()?;
        print!("{out}");
        if !status.success() {
            return Err(format!("exec ended with {status}").into());
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    service.kill(husk::Signal::SIGTERM, false)?;
    println!("service ended with {}", service.wait()?);
    service.delete()?;
    Ok(())
}
