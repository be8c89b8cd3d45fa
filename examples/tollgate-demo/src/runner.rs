//! The scenario type, the runner and the aligned table.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::Demo;

/// A boxed future borrowing the running demo.
pub type ScenarioFuture<'a> = Pin<Box<dyn Future<Output = String> + Send + 'a>>;

/// One scripted step of the walkthrough: a request, the outcome tollgate must produce, and the
/// code that plays it against the running [`Demo`] and describes what actually happened.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// Short name, e.g. `foreign origin`.
    pub name: &'static str,
    /// The request, as a person would describe it.
    pub request: &'static str,
    /// The expected outcome, compared to the actual one as a string.
    pub expected: &'static str,
    /// Plays the scenario and returns the actual outcome.
    pub run: for<'a> fn(&'a Demo) -> ScenarioFuture<'a>,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("request", &self.request)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

/// What one scenario produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The scenario's name.
    pub name: &'static str,
    /// The request description.
    pub request: &'static str,
    /// The expected outcome.
    pub expected: &'static str,
    /// The actual outcome.
    pub actual: String,
}

impl Outcome {
    /// Whether the actual outcome is the expected one.
    pub fn passed(&self) -> bool {
        self.actual == self.expected
    }
}

impl Scenario {
    /// Plays the scenario.
    pub async fn play(&self, demo: &Demo) -> Outcome {
        let actual = (self.run)(demo).await;
        Outcome {
            name: self.name,
            request: self.request,
            expected: self.expected,
            actual,
        }
    }
}

/// Plays every scenario in order (they share the running apps, so order matters).
pub async fn run_all(demo: &Demo, scenarios: &[Scenario]) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        outcomes.push(scenario.play(demo).await);
    }
    outcomes
}

/// The walkthrough table: one aligned row per outcome, then the summary line.
pub fn render(outcomes: &[Outcome]) -> String {
    let headers = ["#", "scenario", "request", "expected", "actual", ""];
    let rows: Vec<[String; 6]> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| {
            [
                (i + 1).to_string(),
                o.name.to_owned(),
                o.request.to_owned(),
                o.expected.to_owned(),
                o.actual.clone(),
                if o.passed() { "ok" } else { "MISMATCH" }.to_owned(),
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 6]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < cells.len() {
                let pad = width.saturating_sub(cell.chars().count());
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers);
    let rule = widths.map(|w| "-".repeat(w));
    line([&rule[0], &rule[1], &rule[2], &rule[3], &rule[4], &rule[5]]);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
    }
    out.push('\n');
    out.push_str(&summary(outcomes));
    out.push('\n');
    out
}

/// `N scenarios: N as expected, M mismatched`.
pub fn summary(outcomes: &[Outcome]) -> String {
    let passed = outcomes.iter().filter(|o| o.passed()).count();
    format!(
        "{} scenarios: {} as expected, {} mismatched",
        outcomes.len(),
        passed,
        outcomes.len() - passed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(name: &'static str, expected: &'static str, actual: &str) -> Outcome {
        Outcome {
            name,
            request: "GET /",
            expected,
            actual: actual.to_owned(),
        }
    }

    #[test]
    fn table_is_aligned_and_flags_mismatches() {
        let table = render(&[
            outcome("first", "200", "200"),
            outcome("a longer name", "403 origin_not_allowed", "200"),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "#  scenario       request  expected                actual"
        );
        assert_eq!(
            lines[2],
            "1  first          GET /    200                     200     ok"
        );
        assert_eq!(
            lines[3],
            "2  a longer name  GET /    403 origin_not_allowed  200     MISMATCH"
        );
        assert_eq!(lines[5], "2 scenarios: 1 as expected, 1 mismatched");
    }
}
