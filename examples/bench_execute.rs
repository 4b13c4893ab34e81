//! Times `Runtime::execute` of `/bin/true` from an installed image: p50 and p99 of N sequential
//! executions, and the wall time of 20 concurrent ones (for `make bench`).
//!
//! ```text
//! cargo run --release --example bench_execute -- ROOTFS.tar.gz STORE_DIR STATE_DIR [N]
//! ```
//!
//! Prints `execute p50 <ms> p99 <ms> n <N>` and `execute 20 concurrent <ms>`.

use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    husk::init_if_requested();
    let args: Vec<String> = std::env::args().collect();
    let (tarball, store, state, n) = match args.as_slice() {
        [_, t, s, r] => (t, s, r, 200),
        [_, t, s, r, n] => (t, s, r, n.parse()?),
        _ => return Err("usage: bench_execute ROOTFS.tar.gz STORE_DIR STATE_DIR [N]".into()),
    };
    let runtime = husk::Runtime::builder()
        .store(store)
        .state_root(state)
        .build();
    runtime.install_image(
        husk::image::ImageSource::RootfsTar(tarball.into()),
        "bench",
        &husk::image::InstallOptions::update(true),
    )?;
    let spec = husk::ExecuteSpec::new("bench", ["/bin/true"]);
    let once = || -> Result<Duration, Box<dyn std::error::Error>> {
        let started = Instant::now();
        let result = runtime.execute(&spec)?;
        if result.exit_code != Some(0) {
            return Err(format!("/bin/true: {result:?}").into());
        }
        Ok(started.elapsed())
    };
    // Warm-up: page cache, overlay module, cgroup hierarchy.
    for _ in 0..3 {
        once()?;
    }
    let mut times = (0..n.max(1))
        .map(|_| once())
        .collect::<Result<Vec<_>, _>>()?;
    times.sort();
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "execute p50 {:.2} p99 {:.2} n {}",
        ms(pick(0.5)),
        ms(pick(0.99)),
        times.len()
    );
    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| s.spawn(|| runtime.execute(&spec)))
            .collect();
        for h in handles {
            match h.join() {
                Ok(Ok(r)) if r.exit_code == Some(0) => {}
                other => return Err(format!("a concurrent execute failed: {other:?}")),
            }
        }
        Ok(())
    })?;
    println!("execute 20 concurrent {:.2}", ms(started.elapsed()));
    Ok(())
}
