//! The rows of a repair study and their per-method table (Markdown and CSV).

use repair::{Method, RepairMetrics, StepLog};
use serde::{Deserialize, Serialize};

use super::benchmarks::Benchmarks;

/// One repair of one case by one method.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepairRow {
    /// Case family.
    pub family: String,
    /// Case id.
    pub case: String,
    /// Method.
    pub method: Method,
    /// Its measurements.
    pub metrics: RepairMetrics,
    /// Benchmark changes (after − before).
    pub deltas: Benchmarks,
    /// Targeting and edits per repaired token (token-by-token methods).
    pub steps: Vec<StepLog>,
}

/// One method over all cases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MethodSummary {
    /// Method.
    pub method: Method,
    /// Cases repaired.
    pub cases: usize,
    /// Fraction made right.
    pub effectiveness: f64,
    /// Variants wrong before that are right after, over all cases.
    pub generalization: f64,
    /// Variants right before that are wrong after.
    pub variants_broken: usize,
    /// Mean fraction of unrelated top-1 tokens unchanged.
    pub top1_unchanged: f64,
    /// Mean KL on unrelated prompts.
    pub mean_kl: f64,
    /// Mean perplexity change.
    pub delta_perplexity: f64,
    /// Mean line exact-match change.
    pub delta_line_exact_match: f64,
    /// Mean HumanEval pass@1 change, when measured.
    pub delta_humaneval_pass1: Option<f64>,
    /// Median neurons changed.
    pub median_neurons: f64,
    /// Median seconds per repair.
    pub median_seconds: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => 0.5 * (values[n / 2 - 1] + values[n / 2]),
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// The per-method table of `rows`.
pub fn summarize(rows: &[RepairRow], methods: &[Method]) -> Vec<MethodSummary> {
    methods
        .iter()
        .map(|&method| {
            let mine: Vec<&RepairRow> = rows.iter().filter(|r| r.method == method).collect();
            let wrong_before: usize = mine.iter().map(|r| r.metrics.variants_wrong_before).sum();
            let fixed: usize = mine.iter().map(|r| r.metrics.variants_fixed).sum();
            let pass1: Vec<f64> = mine.iter().filter_map(|r| r.deltas.humaneval_pass1).collect();
            MethodSummary {
                method,
                cases: mine.len(),
                effectiveness: mean(mine.iter().map(|r| f64::from(u8::from(r.metrics.effective)))),
                generalization: fixed as f64 / wrong_before.max(1) as f64,
                variants_broken: mine.iter().map(|r| r.metrics.variants_broken).sum(),
                top1_unchanged: mean(mine.iter().map(|r| r.metrics.specificity.top1_unchanged)),
                mean_kl: mean(mine.iter().map(|r| r.metrics.specificity.mean_kl)),
                delta_perplexity: mean(mine.iter().map(|r| r.deltas.perplexity)),
                delta_line_exact_match: mean(mine.iter().map(|r| r.deltas.line_exact_match)),
                delta_humaneval_pass1: (!pass1.is_empty()).then(|| mean(pass1.into_iter())),
                median_neurons: median(mine.iter().map(|r| r.metrics.neurons_changed as f64).collect()),
                median_seconds: median(mine.iter().map(|r| r.metrics.seconds).collect()),
            }
        })
        .collect()
}

/// The table as Markdown.
pub fn summary_markdown(summary: &[MethodSummary]) -> String {
    let mut out = String::from(
        "| method | cases | effectiveness | generalization | variants broken | unrelated top-1 unchanged | mean KL | Δ perplexity | Δ line EM | Δ HumanEval pass@1 | median neurons | median s |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in summary {
        let pass1 = s.delta_humaneval_pass1.map_or("—".to_string(), |d| format!("{d:+.4}"));
        out.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {} | {:.4} | {:.2e} | {:+.4} | {:+.4} | {pass1} | {} | {:.2} |\n",
            s.method,
            s.cases,
            s.effectiveness,
            s.generalization,
            s.variants_broken,
            s.top1_unchanged,
            s.mean_kl,
            s.delta_perplexity,
            s.delta_line_exact_match,
            s.median_neurons,
            s.median_seconds
        ));
    }
    out
}

/// Every row as CSV.
pub fn rows_csv(rows: &[RepairRow]) -> String {
    let header = "family,case,method,effective,generalization,top1_unchanged,mean_kl,delta_perplexity,delta_line_em,neurons,seconds\n";
    std::iter::once(header.to_string())
        .chain(rows.iter().map(|r| {
            let m = &r.metrics;
            format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                r.family,
                r.case,
                r.method,
                m.effective,
                m.generalization.map_or(String::new(), |g| g.to_string()),
                m.specificity.top1_unchanged,
                m.specificity.mean_kl,
                r.deltas.perplexity,
                r.deltas.line_exact_match,
                m.neurons_changed,
                m.seconds
            )
        }))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use repair::{Example, RepairCase, Specificity};

    pub(crate) fn case(id: &str) -> RepairCase {
        RepairCase {
            family: "api".into(),
            id: id.into(),
            example: Example { prompt: "os.path.".into(), desired: "join".into() },
            variants: Vec::new(),
        }
    }

    pub(crate) fn row(case: &RepairCase, method: Method, seconds: f64) -> RepairRow {
        RepairRow {
            family: case.family.clone(),
            case: case.id.clone(),
            method,
            metrics: RepairMetrics {
                effective: true,
                variants_wrong_before: 2,
                variants_fixed: 1,
                variants_broken: 0,
                generalization: Some(0.5),
                specificity: Specificity { top1_unchanged: 0.99, mean_kl: 1e-4 },
                neurons_changed: 1,
                seconds,
            },
            deltas: Benchmarks { perplexity: 0.01, line_exact_match: 0.0, humaneval_pass1: None },
            steps: Vec::new(),
        }
    }

    #[test]
    fn the_summary_counts_each_method_apart() {
        let (first, second) = (case("a"), case("b"));
        let mut broken = row(&second, Method::Mint, 3.0);
        broken.metrics.effective = false;
        let rows = vec![row(&first, Method::Mint, 1.0), broken, row(&first, Method::RankOne, 5.0)];
        let summary = summarize(&rows, &[Method::Mint, Method::RankOne]);
        assert_eq!((summary[0].cases, summary[0].effectiveness, summary[0].median_seconds), (2, 0.5, 2.0));
        assert_eq!(summary[0].generalization, 2.0 / 4.0);
        assert_eq!((summary[1].cases, summary[1].effectiveness, summary[1].median_seconds), (1, 1.0, 5.0));
    }
}
