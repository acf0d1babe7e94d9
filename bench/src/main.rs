//! `uptun-bench`: parses flags and runs the bench library.

use std::process::ExitCode;

use clap::Parser;
use uptun_bench::{run, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("uptun-bench: could not start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("uptun-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}
