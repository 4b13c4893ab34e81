//! Runs untrusted code once in a sandbox with limits: memory, processes, CPU, time and output.
//!
//! ```text
//! cargo run --example execute_untrusted -- ROOTFS.tar.gz STORE_DIR STATE_DIR
//! ```

use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    husk::init_if_requested();
    let args: Vec<String> = std::env::args().collect();
    let [_, tarball, store, state] = args.as_slice() else {
        return Err("usage: execute_untrusted ROOTFS.tar.gz STORE_DIR STATE_DIR".into());
    };
    let runtime = husk::Runtime::builder()
        .store(store)
        .state_root(state)
        .build();
    runtime.install_image(
        husk::image::ImageSource::RootfsTar(tarball.into()),
        "sandbox",
        &husk::image::InstallOptions::update(true),
    )?;

    // The "untrusted" snippet reads its input from stdin.
    let snippet =
        "read n; i=0; s=0; while [ $i -le $n ]; do s=$((s + i)); i=$((i + 1)); done; echo $s";
    let spec = husk::ExecuteSpec::new("sandbox", ["sh", "-c", snippet])
        .stdin("100\n")
        .memory_limit(64 << 20)
        .pids_limit(32)
        .cpu_limit(0.5)
        .output_limit(4096)
        .timeout(Duration::from_secs(10));
    let result = runtime.execute(&spec)?;
    println!(
        "sum: {} (exit code {:?}, {:?})",
        String::from_utf8_lossy(&result.stdout).trim(),
        result.exit_code,
        result.duration
    );

    // One that never ends is killed at its deadline.
    let spin = husk::ExecuteSpec::new("sandbox", ["sh", "-c", "while :; do :; done"])
        .timeout(Duration::from_millis(500));
    let result = runtime.execute(&spin)?;
    println!(
        "spinner: timed out {}, signal {:?}",
        result.timed_out, result.signal
    );

    // Requests the sandbox does not allow are refused before anything is made.
    let refused = runtime.execute(&spec.clone().network(husk::Network::Host));
    match refused {
        Err(e) => println!("host network: refused ({e})"),
        Ok(_) => return Err("the host network was allowed".into()),
    }
    Ok(())
}
