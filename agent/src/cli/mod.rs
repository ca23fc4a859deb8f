//! The agent's commands.

pub mod check;
pub mod run;
pub mod status;

use std::{path::Path, process::ExitCode};

use outpost_agent::config::Config;

/// Exit code for a bad config file.
pub const BAD_CONFIG: u8 = 2;

/// Loads the config or prints why not (file, line, key) for exit code 2.
pub fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|err| {
        eprintln!("error: {err}");
        ExitCode::from(BAD_CONFIG)
    })
}
