//! The results: one markdown table, rows = systems, columns = figures, each
//! cell with its ratio to rathole's figure, and notes on what failed.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::systems::SystemKind;

/// A measured quantity, in table column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Figure {
    Bulk1,
    Bulk8,
    CpuPerGb,
    Rps,
    RrP50,
    RrP99,
    CpuPerRequest,
    Churn,
    CpuPerConn,
    InteractiveP50,
    InteractiveP99,
    RssIdle,
    RssIdleConns,
    RssPeakBulk8,
}

impl Figure {
    fn header(self, idle_conns: usize) -> String {
        match self {
            Figure::Bulk1 => "bulk 1 stream Gbit/s".into(),
            Figure::Bulk8 => "bulk 8 streams Gbit/s".into(),
            Figure::CpuPerGb => "CPU s/GB bulk 8".into(),
            Figure::Rps => "req/s (64 conns)".into(),
            Figure::RrP50 => "req p50 ms".into(),
            Figure::RrP99 => "req p99 ms".into(),
            Figure::CpuPerRequest => "CPU µs/req".into(),
            Figure::Churn => "churn conn/s".into(),
            Figure::CpuPerConn => "CPU µs/conn".into(),
            Figure::InteractiveP50 => "interactive p50 ms".into(),
            Figure::InteractiveP99 => "interactive p99 ms".into(),
            Figure::RssIdle => "RSS idle MiB".into(),
            Figure::RssIdleConns => format!("RSS {} idle conns MiB", thousands(idle_conns)),
            Figure::RssPeakBulk8 => "RSS peak bulk 8 MiB".into(),
        }
    }
}

/// What a cell holds.
#[derive(Debug, Clone)]
pub enum Cell {
    Value(f64),
    /// A value with a remark after it (e.g. fewer connections than asked).
    ValueNote(f64, String),
    /// The workload failed; the reason is in the notes.
    Failed,
    /// Does not apply (memory of `direct`, which has no process).
    NotApplicable,
}

impl Cell {
    /// The number, for sorting; failures sort first and are never picked.
    fn value(&self) -> f64 {
        match self {
            Cell::Value(v) | Cell::ValueNote(v, _) => *v,
            Cell::Failed | Cell::NotApplicable => f64::NEG_INFINITY,
        }
    }
}

/// Everything measured in one run.
#[derive(Debug, Default)]
pub struct Results {
    systems: Vec<SystemKind>,
    /// Every round's cell; the table shows their median.
    cells: BTreeMap<(SystemKind, Figure), Vec<Cell>>,
    notes: Vec<String>,
    pub idle_conns: usize,
}

impl Results {
    pub fn new(systems: &[SystemKind], idle_conns: usize) -> Self {
        Results {
            systems: systems.to_vec(),
            idle_conns,
            ..Results::default()
        }
    }

    /// Adds one round's cell for a figure.
    pub fn add(&mut self, system: SystemKind, figure: Figure, cell: Cell) {
        self.cells.entry((system, figure)).or_default().push(cell);
    }

    /// The median of the rounds that measured something; failed if none did.
    fn combined(&self, system: SystemKind, figure: Figure) -> Option<Cell> {
        let rounds = self.cells.get(&(system, figure))?;
        let mut values: Vec<&Cell> = rounds
            .iter()
            .filter(|c| matches!(c, Cell::Value(_) | Cell::ValueNote(..)))
            .collect();
        if values.is_empty() {
            return rounds.first().cloned();
        }
        values.sort_by(|a, b| a.value().total_cmp(&b.value()));
        Some(values[(values.len() - 1) / 2].clone())
    }

    /// Marks `figures` failed for `system` and notes why.
    pub fn fail(&mut self, system: SystemKind, figures: &[Figure], why: String) {
        for &f in figures {
            self.add(system, f, Cell::Failed);
        }
        self.note(format!("{}: {why}", system.name()));
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// The markdown table, a legend and the notes.
    pub fn render(&self, machine: &str) -> String {
        let figures: Vec<Figure> = {
            let mut f: Vec<Figure> = self.cells.keys().map(|&(_, f)| f).collect();
            f.sort();
            f.dedup();
            f
        };
        let mut out = format!("{machine}\n\n| system |");
        for f in &figures {
            let _ = write!(out, " {} |", f.header(self.idle_conns));
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(figures.len()));
        out.push('\n');
        for &system in &self.systems {
            let _ = write!(out, "| {} |", system.name());
            for &f in &figures {
                let _ = write!(out, " {} |", self.cell_text(system, f));
            }
            out.push('\n');
        }
        out.push_str(
            "\nIn parentheses: the figure divided by rathole's (for ms, MiB and CPU, lower is better).\n",
        );
        if !self.notes.is_empty() {
            out.push_str("\nNotes:\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {}", note.replace('\n', " "));
            }
        }
        out
    }

    fn cell_text(&self, system: SystemKind, figure: Figure) -> String {
        match self.combined(system, figure).as_ref() {
            None => String::new(),
            Some(Cell::Failed) => "fail".into(),
            Some(Cell::NotApplicable) => "—".into(),
            Some(Cell::Value(v)) => self.with_ratio(*v, figure),
            Some(Cell::ValueNote(v, note)) => format!("{} {note}", self.with_ratio(*v, figure)),
        }
    }
}

impl Results {
    fn with_ratio(&self, v: f64, figure: Figure) -> String {
        match self.combined(SystemKind::Rathole, figure) {
            Some(Cell::Value(base) | Cell::ValueNote(base, _)) if base > 0.0 => {
                format!("{} ({:.2}×)", number(v), v / base)
            }
            _ => number(v),
        }
    }
}

/// Three significant digits or so, never scientific notation.
fn number(v: f64) -> String {
    match v.abs() {
        a if a >= 1000.0 => thousands(v.round() as usize),
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut groups: Vec<&str> = Vec::new();
    let mut end = digits.len();
    while end > 3 {
        groups.push(&digits[end - 3..end]);
        end -= 3;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    groups.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_readable() {
        assert_eq!(number(31234.4), "31,234");
        assert_eq!(number(4.567), "4.57");
        assert_eq!(number(0.0421), "0.042");
        assert_eq!(thousands(10000), "10,000");
    }

    #[test]
    fn cells_show_the_median_and_its_ratio_to_rathole_and_failures_are_noted() {
        let mut r = Results::new(&[SystemKind::Rathole, SystemKind::Uptun], 10_000);
        r.add(SystemKind::Rathole, Figure::Bulk1, Cell::Value(4.0));
        for v in [6.0, 9.0, 1.0] {
            r.add(SystemKind::Uptun, Figure::Bulk1, Cell::Value(v));
        }
        r.fail(SystemKind::Uptun, &[Figure::Churn], "timed out".into());
        r.add(SystemKind::Rathole, Figure::Churn, Cell::Value(1000.0));
        r.add(SystemKind::Rathole, Figure::Churn, Cell::Failed);
        let text = r.render("machine: test");
        assert!(text.contains("| uptun | 6.00 (1.50×) | fail |"), "{text}");
        assert!(
            text.contains("| rathole | 4.00 (1.00×) | 1,000 (1.00×) |"),
            "{text}"
        );
        assert!(text.contains("- uptun: timed out"), "{text}");
    }
}
