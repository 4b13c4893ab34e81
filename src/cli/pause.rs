//! `husk pause` and `husk resume`: freeze and thaw every process of a container.

use std::path::Path;

use clap::Args;

use super::{runtime, CmdResult};

#[derive(Args, Debug)]
pub struct PauseArgs {
    pub id: String,
}

pub fn pause(root: &Path, a: PauseArgs) -> CmdResult {
    runtime(root).load(&a.id)?.pause()?;
    Ok(0)
}

pub fn resume(root: &Path, a: PauseArgs) -> CmdResult {
    runtime(root).load(&a.id)?.resume()?;
    Ok(0)
}
