//! The logit lens over CPython files: per layer, how often the early read-out is already the final top-1 and the
//! true next token.

use std::path::Path;

use models::Model;
use probes::plots::{Curve, LayerPlot};
use probes::LensCurve;
use serde::{Deserialize, Serialize};

use super::{names, write_file, write_json, Context, Operation, Report};
use crate::error::Result;

/// How much code the lens reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LensSettings {
    /// CPython files read.
    pub files: usize,
    /// Tokens read per file.
    pub max_tokens: usize,
}

impl Default for LensSettings {
    fn default() -> Self {
        LensSettings { files: 10, max_tokens: 128 }
    }
}

impl Operation for LensSettings {
    type Report = LensCurve;

    fn run(&self, model: &Model, context: &Context) -> Result<LensCurve> {
        let documents = probes::corpus::stdlib_documents(self.files)?;
        Ok(probes::lens_over_corpus(model, &documents, self.max_tokens, context.progress)?)
    }
}

/// A per-layer curve without an interval.
fn plain_curve(name: &str, values: &[f64]) -> Curve {
    Curve { name: name.into(), points: values.iter().enumerate().map(|(l, &v)| (l as f64, v, v, v)).collect() }
}

impl Report for LensCurve {
    fn summary(&self) -> Vec<String> {
        let last = self.correct.len().saturating_sub(1);
        vec![format!(
            "{} positions; layer 0 = final top-1 at {:.3}, = next token at {:.3}; layer {last} = next token at {:.3}; the output is right at {:.3} (results.csv has every layer)",
            self.positions,
            self.agrees_with_final.first().unwrap_or(&0.0),
            self.correct.first().unwrap_or(&0.0),
            self.correct.last().unwrap_or(&0.0),
            self.final_correct
        )]
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "results.json", self)?;
        let csv: String = std::iter::once("layer,agrees_with_final,correct\n".to_string())
            .chain(
                self.agrees_with_final
                    .iter()
                    .zip(&self.correct)
                    .enumerate()
                    .map(|(l, (a, c))| format!("{l},{a:.4},{c:.4}\n")),
            )
            .collect();
        write_file(dir, "results.csv", csv.as_bytes())?;
        let plot = LayerPlot {
            title: "logit lens: how often each layer's read-out is already right".into(),
            x_label: "layer".into(),
            y_label: "fraction of positions".into(),
            curves: vec![
                plain_curve("= final top-1", &self.agrees_with_final),
                plain_curve("= next token", &self.correct),
            ],
        };
        plot.write(&dir.join("lens"))?;
        Ok(names(&["lens.png", "lens.svg", "results.csv", "results.json"]))
    }
}
