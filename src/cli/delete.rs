//! `husk delete`.

use std::path::Path;

use clap::Args;

use super::{runtime, CmdResult};

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill a running container first; a missing container is not an error.
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub ids: Vec<String>,
}

pub fn run(root: &Path, a: DeleteArgs) -> CmdResult {
    let rt = runtime(root);
    for id in &a.ids {
        match rt.load(id) {
            Ok(c) => c.delete(a.force)?,
            Err(husk::Error::NotFound(_)) if a.force => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(0)
}
