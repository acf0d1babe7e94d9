//! uptun-bench: starts uptun, its peers and plain baselines on loopback,
//! drives the same load through each, and prints one comparison table.
#![forbid(unsafe_code)]

mod cli;
mod cpu;
mod crosscheck;
mod install;
mod load;
mod machine;
mod memory;
mod peers;
mod procs;
mod relay;
mod runner;
mod steps;
mod systems;
mod table;
mod target;
mod tls;
mod uptun;

pub use cli::{Cli, Command};

/// Runs what the command line asks for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Relay { listen, to } => relay::run(listen, to).await,
        Command::Hold { to, count } => load::hold(to, count).await,
        Command::Crosscheck => crosscheck::run(&cli.opts).await,
        ref command => runner::run(&cli.opts, &command.workloads()).await,
    }
}
