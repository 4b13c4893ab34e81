//! `husk start`.

use std::path::Path;

use clap::Args;

use super::{runtime, CmdResult};

#[derive(Args, Debug)]
pub struct StartArgs {
    pub id: String,
}

pub fn run(root: &Path, a: StartArgs) -> CmdResult {
    runtime(root).load(&a.id)?.start()?;
    Ok(0)
}
