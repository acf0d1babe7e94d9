//! Runs the chosen workloads on every chosen system: each step on a freshly
//! started system, and on all systems before the next step. Progress goes to
//! stderr, the table to stdout.

use std::time::Duration;

use anyhow::Context;
use tokio::time::{timeout, Instant};

use crate::cli::{Options, Workload};
use crate::memory;
use crate::steps::{measure, Bench, Step};
use crate::systems::{self, Probe, Setup, SystemKind, Targets};
use crate::table::{Cell, Results};
use crate::target;
use crate::{install, machine};

/// One round of one step.
#[derive(Debug, Clone, Copy)]
struct Round {
    step: Step,
    round: usize,
    rounds: usize,
}

impl Round {
    /// `bulk8` or `bulk8 (round 2/3)`, for progress lines and notes.
    fn label(&self) -> String {
        if self.rounds == 1 {
            self.step.label().to_string()
        } else {
            format!(
                "{} (round {}/{})",
                self.step.label(),
                self.round,
                self.rounds
            )
        }
    }
}

pub async fn run(opts: &Options, workloads: &[Workload]) -> anyhow::Result<()> {
    let plan = opts.plan();
    let nofile = memory::raise_nofile();
    let (systems, uptun_dir) = (opts.systems.clone(), opts.uptun_dir.clone());
    let programs =
        tokio::task::spawn_blocking(move || install::prepare(&systems, uptun_dir.as_deref()))
            .await
            .context("the install step panicked")??;
    let dir = tempfile::Builder::new()
        .prefix("uptun-bench-")
        .tempdir()
        .context("could not create a temporary folder")?;
    let uptun_source = programs.uptun_source.clone();
    let setup = Setup {
        dir: dir.path().to_path_buf(),
        programs,
    };
    let target = target::start().await?;
    let bench = Bench {
        setup: &setup,
        target: &target,
        plan,
        nofile,
        started: Instant::now(),
    };
    let mut results = Results::new(&opts.systems, plan.idle_conns);
    // Step by step across all systems, round after round, so that the
    // systems compared in a column run interleaved under the same conditions
    // (this machine drifts). Churn and memory leave tens of thousands of
    // TIME_WAIT sockets behind, so they go last; memory is counted once.
    for &workload in workloads {
        for &step in Step::of(workload) {
            let rounds = if matches!(step, Step::Memory) {
                1
            } else {
                plan.rounds
            };
            for round in 1..=rounds {
                for &system in &opts.systems {
                    let at = Round {
                        step,
                        round,
                        rounds,
                    };
                    run_step(&bench, system, at, &mut results).await;
                }
            }
        }
    }
    let mut header = format!(
        "{}\nrun: median of {} rounds, each measured for {:.0} s after a {:.1} s warm-up; open-files limit {nofile}",
        machine::describe(),
        plan.rounds,
        plan.measure.as_secs_f64(),
        plan.warmup.as_secs_f64()
    );
    if opts.systems.iter().any(|s| s.is_uptun()) {
        header.push_str(&format!("\nuptun: {uptun_source}"));
    }
    println!("{}", results.render(&header));
    if opts.keep_logs {
        eprintln!("configs and logs kept in {}", dir.keep().display());
    }
    Ok(())
}

async fn run_step(bench: &Bench<'_>, system: SystemKind, at: Round, results: &mut Results) {
    let step = at.step;
    if system == SystemKind::Direct && matches!(step, Step::Memory) {
        for &f in step.figures() {
            results.add(system, f, Cell::NotApplicable);
        }
        return;
    }
    let t0 = Instant::now();
    let targets = Targets {
        raw: bench.target.addr,
        web: None,
        probe: Probe::Raw,
    };
    let logs = format!("{}-r{}", step.label(), at.round);
    let outcome = match systems::start(system, bench.setup, &logs, targets).await {
        Err(err) => Err(err.context("did not start")),
        Ok(mut running) => {
            // Bounded whatever happens inside: a hung tunnel fails the step.
            let limit = bench.plan.warmup + bench.plan.measure + Duration::from_secs(150);
            let outcome = match timeout(limit, measure(bench, &mut running, step)).await {
                Ok(outcome) => outcome.and_then(|cells| running.check_alive().map(|()| cells)),
                Err(_) => Err(anyhow::anyhow!("did not finish within {limit:?}")),
            };
            let warnings = running.stop().await;
            note_warnings(bench, system, at, &warnings, results);
            outcome
        }
    };
    let took = format!("({:.1} s)", t0.elapsed().as_secs_f64());
    let name = system.name();
    match outcome {
        Ok(cells) => {
            let shown: Vec<&str> = cells.iter().map(|(_, text, _)| text.as_str()).collect();
            let shown = shown.join(", ");
            bench.progress(&format!("{name} {}: {shown} {took}", at.label()));
            for (figure, _, cell) in cells {
                results.add(system, figure, cell);
            }
        }
        Err(err) => {
            bench.progress(&format!("{name} {}: FAILED {took}: {err:#}", at.label()));
            let why = format!("{} failed: {err:#}", at.label());
            results.fail(system, step.figures(), why);
        }
    }
    settle(bench, system, results).await;
}

/// Reports the WARN/ERROR lines a system logged during a step.
fn note_warnings(
    bench: &Bench<'_>,
    system: SystemKind,
    at: Round,
    warnings: &[String],
    results: &mut Results,
) {
    let Some(first) = warnings.first() else {
        return;
    };
    let first: String = first.chars().take(200).collect();
    let (name, count, label) = (system.name(), warnings.len(), at.label());
    bench.progress(&format!(
        "{name} {label}: {count} WARN/ERROR log lines, first: {first}"
    ));
    results.note(format!(
        "{name} ({label}): {count} WARN/ERROR log lines, e.g. `{first}`"
    ));
}

/// Waits until the target saw every connection of the step close, so steps
/// do not overlap; a leftover is worth a note.
async fn settle(bench: &Bench<'_>, system: SystemKind, results: &mut Results) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while bench.target.stats.active() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = bench.target.stats.active();
    if left > 0 {
        results.note(format!(
            "{}: {left} target connections still open 10 s after a step",
            system.name()
        ));
    }
    // Let the kernel finish closing sockets before the next system starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
}
