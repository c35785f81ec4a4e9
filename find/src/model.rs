//! A numeric answer's model: a fit of the family library (the fast first guess) or a form of the symbolic search,
//! compared by one parsimony criterion, printed as code and described from its structure.

use crate::fit::Fit;
use crate::symbolic::describe::{describe, domain};
use crate::symbolic::piecewise::Piecewise;
use crate::symbolic::{criterion, Fitted};

/// A fitted model of a numeric function.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// A family of the library.
    Library(Fit),
    /// A form of the symbolic search.
    Symbolic(Fitted),
    /// Two forms joined at a breakpoint.
    Piecewise(Piecewise),
}

impl Model {
    /// The model at `x`.
    pub fn eval(&self, x: f64) -> f64 {
        match self {
            Model::Library(fit) => fit.eval(x),
            Model::Symbolic(fit) => fit.eval(&[x])[0],
            Model::Piecewise(fit) => fit.eval(x),
        }
    }

    /// The model as code of the expression language.
    pub fn code(&self) -> String {
        match self {
            Model::Library(fit) => fit.code(),
            Model::Symbolic(fit) => fit.code(),
            Model::Piecewise(fit) => fit.code(),
        }
    }

    /// What the model computes, in words.
    pub fn description(&self) -> String {
        match self {
            Model::Library(fit) => format!("{} function: {}", fit.family, fit.code()),
            Model::Symbolic(fit) => format!("{}: {}", describe(fit), fit.code()),
            Model::Piecewise(fit) => format!(
                "in two pieces, changing at x = {}: below it {}; from it {}: {}",
                crate::symbolic::form::number(fit.at),
                describe(&fit.left),
                describe(&fit.right),
                fit.code()
            ),
        }
    }

    /// Where the model is defined on FIND's range.
    pub fn domain(&self) -> String {
        domain(|x| self.eval(x))
    }

    /// The parsimony criterion of the model on `points` (residual floor `floor`): BIC plus description length; a
    /// form counts the constants its values depend on independently, a library family its coefficients and
    /// searched parameters and as many nodes as basis functions.
    pub fn criterion(&self, points: &[(f64, f64)], floor: f64) -> f64 {
        let rss: f64 = points.iter().map(|&(x, y)| (y - self.eval(x)).powi(2)).sum();
        let rss = if rss.is_finite() { rss } else { f64::INFINITY };
        match self {
            Model::Library(fit) => criterion(rss, floor, points.len(), fit.parameters, fit.basis.len() as f64),
            Model::Symbolic(fit) => {
                let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
                criterion(rss, floor, points.len(), fit.effective_parameters(&xs), fit.form.complexity())
            }
            Model::Piecewise(fit) => fit.criterion(points, floor),
        }
    }
}
