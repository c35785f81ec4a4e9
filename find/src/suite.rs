//! The FIND suite, seeded and reproducible: numeric functions from FIND's families (clean, noised, locally
//! corrupted, composed, approximated by a 1-64-ReLU-1 MLP fitted with tch) and string functions (primitives
//! and compositions of two), each with its ground-truth description, domain and executable definition, saved as
//! JSON so a run can be repeated.

use std::path::Path;

use models::tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::expr::Expr;
use super::strings::{compose, primitives};
use crate::error::{FindError, Result};

/// The table rows FIND reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A base family, as is.
    Clean,
    /// A base family plus noise on the output.
    Noised,
    /// A base family whose output is replaced by noise inside one interval.
    Corrupted,
    /// The sum or product of two functions.
    Composed,
    /// A small MLP fitted to a base family.
    MlpApproximated,
    /// One string primitive.
    StringSimple,
    /// Two string primitives composed.
    StringComposed,
}

impl Category {
    /// Whether the function maps strings to strings.
    pub fn is_string(self) -> bool {
        matches!(self, Category::StringSimple | Category::StringComposed)
    }
}

/// Noise added to every output of a noised function.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseKind {
    /// N(0, 1).
    Normal,
    /// U(-1, 1).
    Uniform,
    /// Poisson(1).
    Poisson,
}

impl NoiseKind {
    /// One draw.
    pub fn sample(self, rng: &mut StdRng) -> f64 {
        match self {
            NoiseKind::Normal => {
                let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
                (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
            }
            NoiseKind::Uniform => rng.gen_range(-1.0..1.0),
            NoiseKind::Poisson => {
                let (limit, mut product, mut k) = ((-1.0f64).exp(), rng.gen::<f64>(), 0.0);
                while product > limit {
                    product *= rng.gen::<f64>();
                    k += 1.0;
                }
                k
            }
        }
    }
}

/// The interval where a corrupted function's output is noise around `mean` (std 0.1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Corruption {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Centre of the noise (the function's mean over the domain).
    pub mean: f64,
}

/// A 1-64-ReLU-1 network `w2 . relu(w1 x / 128 + b1) + b2`, in its own JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    /// First layer weights (64).
    pub w1: Vec<f64>,
    /// First layer biases (64).
    pub b1: Vec<f64>,
    /// Output weights (64).
    pub w2: Vec<f64>,
    /// Output bias.
    pub b2: f64,
}

impl Mlp {
    /// The network at `x`.
    pub fn eval(&self, x: f64) -> f64 {
        let hidden = self.w1.iter().zip(&self.b1).map(|(w, b)| (w * x / 128.0 + b).max(0.0));
        hidden.zip(&self.w2).map(|(h, w)| h * w).sum::<f64>() + self.b2
    }
}

/// One function of the suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    /// Position in the suite.
    pub id: usize,
    /// Its table row.
    pub category: Category,
    /// Ground-truth description in words.
    pub description: String,
    /// Ground-truth domain statement.
    pub domain: String,
    /// The clean function as an expression of `x`.
    pub definition: String,
    /// Output noise, for noised functions.
    pub noise: Option<NoiseKind>,
    /// The corrupted interval, for corrupted functions.
    pub corruption: Option<Corruption>,
    /// The network, for MLP-approximated functions (which are then the function itself).
    pub mlp: Option<Mlp>,
    /// Ten held-out inputs for string functions.
    pub test_inputs: Vec<String>,
}

impl FunctionSpec {
    /// A numeric function of `category` as `definition` says, without noise, corruption or network.
    pub fn numeric(id: usize, category: Category, description: String, domain: String, definition: String) -> Self {
        FunctionSpec {
            id,
            category,
            description,
            domain,
            definition,
            noise: None,
            corruption: None,
            mlp: None,
            test_inputs: Vec::new(),
        }
    }

    /// The deterministic part of the function at `x`: the MLP, or the definition, with the corruption's mean
    /// inside its interval. This is what numeric answers are scored against.
    pub fn truth(&self, x: f64) -> Result<f64> {
        if let Some(c) = &self.corruption {
            if (c.low..=c.high).contains(&x) {
                return Ok(c.mean);
            }
        }
        match &self.mlp {
            Some(mlp) => Ok(mlp.eval(x)),
            None => Expr::parse(&self.definition)
                .and_then(|e| e.eval_num(x))
                .map_err(|e| FindError::InvalidInput(format!("function {}: {e}", self.id))),
        }
    }

    /// One black-box call of a numeric function: the truth plus its noise (inside a corrupted interval: noise
    /// with std 0.1 around the mean).
    pub fn call_numeric(&self, x: f64, rng: &mut StdRng) -> Result<f64> {
        let value = self.truth(x)?;
        let in_corruption = self.corruption.is_some_and(|c| (c.low..=c.high).contains(&x));
        Ok(if in_corruption {
            value + 0.1 * NoiseKind::Normal.sample(rng)
        } else {
            value + self.noise.map_or(0.0, |n| n.sample(rng))
        })
    }

    /// One call of a string function.
    pub fn call_string(&self, x: &str) -> Result<String> {
        Expr::parse(&self.definition)
            .and_then(|e| e.eval_str(x))
            .map_err(|e| FindError::InvalidInput(format!("function {}: {e}", self.id)))
    }
}

/// The whole suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suite {
    /// The seed it was generated from.
    pub seed: u64,
    /// The functions.
    pub functions: Vec<FunctionSpec>,
}

/// `v` rounded to one decimal.
pub fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A random parameter in `lo..hi`, rounded to one decimal and kept away from zero.
pub fn param(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    let v = r1(rng.gen_range(lo..hi));
    if v == 0.0 {
        0.5
    } else {
        v
    }
}

/// A signed number inside an expression.
pub fn n(v: f64) -> String {
    if v < 0.0 {
        format!("({v})")
    } else {
        format!("{v}")
    }
}

/// A base family: (family name, definition, description, domain).
pub(crate) fn base_function(rng: &mut StdRng) -> (String, String, String) {
    let families = [
        "linear",
        "polynomial",
        "rational",
        "absolute",
        "root",
        "reciprocal",
        "logarithm",
        "step",
        "leaky_relu",
        "tanh",
        "sin",
        "cos",
        "constant",
        "gaussian",
        "rectangle",
        "square_wave",
    ];
    let family = *families.choose(rng).unwrap_or(&"linear");
    let (a, b, c) = (param(rng, -5.0, 5.0), param(rng, -10.0, 10.0), param(rng, -50.0, 50.0));
    let (definition, domain) = match family {
        "linear" => (format!("{} * x + {}", n(a), n(b)), "all x".to_string()),
        "polynomial" => {
            let degree = rng.gen_range(2..=5);
            let terms: Vec<String> = (0..=degree)
                .map(|k| {
                    let scale = 128f64.powi(k - 1).max(1.0);
                    let coefficient = param(rng, -3.0, 3.0) / scale;
                    format!("{} * x^{k}", n(coefficient))
                })
                .collect();
            (terms.join(" + "), "all x".into())
        }
        "rational" => (format!("({} * x^2 + {}) / (x^2 + {})", n(a), n(b * 10.0), c.abs() + 1.0), "all x".into()),
        "absolute" => (format!("{} * abs(x - {}) + {}", n(a), n(c), n(b)), "all x".into()),
        "root" => (format!("{} * sqrt(x - {})", n(a * 3.0), n(c)), format!("x >= {c}")),
        "reciprocal" => (format!("{} / (x - {}) + {}", n(a * 20.0), n(c), n(b)), format!("x != {c}")),
        "logarithm" => (format!("{} * log(x - {}) + {}", n(a * 3.0), n(c), n(b)), format!("x > {c}")),
        "step" => (format!("if(x > {}, {}, {})", n(c), n(a * 10.0), n(b)), format!("changes at x = {c}")),
        "leaky_relu" => (
            format!("if(x > {}, {} * (x - {}), 0.1 * {} * (x - {}))", n(c), n(a), n(c), n(a), n(c)),
            format!("changes slope at x = {c}"),
        ),
        "tanh" => {
            (format!("{} * tanh({} * (x - {}))", n(a * 10.0), r1(rng.gen_range(0.02..0.5)), n(c)), "all x".into())
        }
        "sin" => (
            format!("{} * sin({} * x + {})", n(a * 5.0), r1(rng.gen_range(0.05..0.5)).max(0.1), n(r1(b / 4.0))),
            "all x".into(),
        ),
        "cos" => (
            format!("{} * cos({} * x + {})", n(a * 5.0), r1(rng.gen_range(0.05..0.5)).max(0.1), n(r1(b / 4.0))),
            "all x".into(),
        ),
        "constant" => (n(b * 5.0), "all x".into()),
        "gaussian" => (
            format!("{} * exp(-((x - {})^2) / (2 * {}^2))", n(a * 10.0), n(c), r1(rng.gen_range(3.0..30.0))),
            "all x".into(),
        ),
        "rectangle" => (
            format!("if(abs(x - {}) < {}, {}, {})", n(c), r1(rng.gen_range(3.0..30.0)), n(a * 10.0), n(b)),
            format!("a pulse around x = {c}"),
        ),
        _ => (
            format!("{} * (2 * (floor(x / {}) % 2 == 0) - 1)", n(a * 5.0), r1(rng.gen_range(4.0..30.0))),
            "periodic".into(),
        ),
    };
    (family.to_string(), definition, domain)
}

/// A term of a composition (linear, polynomial, step, ReLU, constant, ceil, floor, rectangle, square wave).
fn composition_term(rng: &mut StdRng) -> String {
    let (a, c) = (param(rng, -3.0, 3.0), param(rng, -50.0, 50.0));
    match rng.gen_range(0..9) {
        0 => format!("({} * x + {})", n(a), n(param(rng, -10.0, 10.0))),
        1 => format!("({} * x^2 / 128)", n(a)),
        2 => format!("if(x > {}, {}, 0)", n(c), n(a * 10.0)),
        3 => format!("relu(x - {})", n(c)),
        4 => n(a * 5.0),
        5 => format!("ceil(x / {})", param(rng, 2.0, 20.0).abs()),
        6 => format!("floor(x / {})", param(rng, 2.0, 20.0).abs()),
        7 => format!("if(abs(x - {}) < {}, {}, 0)", n(c), r1(rng.gen_range(3.0..30.0)), n(a * 10.0)),
        _ => format!("(2 * (floor(x / {}) % 2 == 0) - 1)", r1(rng.gen_range(4.0..30.0))),
    }
}

fn random_word(rng: &mut StdRng) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    let len = rng.gen_range(4..11);
    let mut word: String = (0..len).map(|_| LETTERS[rng.gen_range(0..26)] as char).collect();
    if rng.gen_bool(0.3) {
        word = word.to_uppercase();
    } else if rng.gen_bool(0.3) {
        let at = rng.gen_range(0..word.len());
        word.insert_str(at, &rng.gen_range(0..100).to_string());
    }
    word
}

/// Fits one 1-64-ReLU-1 MLP per definition (all at once, batched) on 512 points of [-128, 128].
fn fit_mlps(definitions: &[String], seed: u64) -> Result<Vec<Mlp>> {
    if definitions.is_empty() {
        return Ok(Vec::new());
    }
    models::tch::manual_seed(seed as i64);
    let xs: Vec<f64> = (0..512).map(|i| -128.0 + 256.0 * (i as f64 + 0.5) / 512.0).collect();
    let mut targets = Vec::with_capacity(definitions.len() * xs.len());
    for d in definitions {
        let e = Expr::parse(d).map_err(|e| FindError::InvalidInput(e.to_string()))?;
        targets.extend(xs.iter().map(|&x| e.eval_num(x).ok().filter(|v| v.is_finite()).unwrap_or(0.0) as f32));
    }
    let k = definitions.len() as i64;
    let y = Tensor::from_slice(&targets).view([k, 512, 1]);
    let scale = y.std_dim(1, true, true).clamp_min(1e-3);
    let centre = y.mean_dim(1, true, Kind::Float);
    let yn = (&y - &centre) / &scale;
    let x = Tensor::from_slice(&xs.iter().map(|&v| (v / 128.0) as f32).collect::<Vec<_>>())
        .view([1, 512, 1])
        .expand([k, 512, 1], true);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let w1 = root.randn("w1", &[k, 1, 64], 0.0, 3.0);
    let b1 = root.randn("b1", &[k, 1, 64], 0.0, 1.0);
    let w2 = root.randn("w2", &[k, 64, 1], 0.0, 0.1);
    let b2 = root.zeros("b2", &[k, 1, 1]);
    let mut opt = nn::Adam::default().build(&vs, 0.01).map_err(models::ModelError::from)?;
    let forward = |x: &Tensor| (x.bmm(&w1) + &b1).relu().bmm(&w2) + &b2;
    for _ in 0..600 {
        let loss = (forward(&x) - &yn).square().mean(Kind::Float) * k as f64;
        opt.backward_step(&loss);
    }
    let to_vec = |t: Tensor| Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap_or_default();
    let (scale, centre) = (to_vec(scale), to_vec(centre));
    (0..k as usize)
        .map(|i| {
            let pick = |t: &Tensor| to_vec(t.get(i as i64).detach());
            let w2: Vec<f64> = pick(&w2).iter().map(|w| w * scale[i]).collect();
            Ok(Mlp { w1: pick(&w1), b1: pick(&b1), w2, b2: pick(&b2)[0] * scale[i] + centre[i] })
        })
        .collect()
}

impl Suite {
    /// Generates `numeric` numeric and `strings` string functions from `seed`. Numeric: 15% composed, 15% MLP
    /// approximations, and the rest clean, noised and corrupted (4:1.5:1.5). Strings: 30% one primitive, 70%
    /// compositions whose output differs from either part alone on the test inputs.
    pub fn generate(seed: u64, numeric: usize, strings: usize) -> Result<Suite> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut functions = Vec::with_capacity(numeric + strings);
        let mut mlp_slots = Vec::new();
        for id in 0..numeric {
            let share = (id * 100 / numeric.max(1)) as u32;
            let category = match share {
                0..=14 => Category::Composed,
                15..=29 => Category::MlpApproximated,
                30..=69 => Category::Clean,
                70..=84 => Category::Noised,
                _ => Category::Corrupted,
            };
            let spec = if category == Category::Composed {
                let (f, g) = (composition_term(&mut rng), composition_term(&mut rng));
                let op = if rng.gen_bool(0.5) { "+" } else { "*" };
                let definition = format!("{f} {op} {g}");
                let description = format!("the {} of {f} and {g}", if op == "+" { "sum" } else { "product" });
                FunctionSpec {
                    id,
                    category,
                    description,
                    domain: "all x".into(),
                    definition,
                    noise: None,
                    corruption: None,
                    mlp: None,
                    test_inputs: Vec::new(),
                }
            } else {
                let (family, definition, domain) = base_function(&mut rng);
                let description = format!("{family}: {definition}");
                let mut spec = FunctionSpec::numeric(id, category, description, domain, definition);
                match category {
                    Category::Noised => {
                        let noise = *[NoiseKind::Normal, NoiseKind::Uniform, NoiseKind::Poisson]
                            .choose(&mut rng)
                            .unwrap_or(&NoiseKind::Normal);
                        spec.description = format!("{} plus {noise:?} noise", spec.description);
                        spec.noise = Some(noise);
                    }
                    Category::Corrupted => {
                        let width = r1(rng.gen_range(5.0..25.0));
                        let low = r1(rng.gen_range(-120.0..(120.0 - width)));
                        let expr = Expr::parse(&spec.definition).map_err(|e| FindError::InvalidInput(e.to_string()))?;
                        let values: Vec<f64> = (-128..128)
                            .filter_map(|i| expr.eval_num(i as f64 + 0.5).ok())
                            .filter(|v| v.is_finite())
                            .collect();
                        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
                        spec.corruption = Some(Corruption { low, high: r1(low + width), mean });
                        spec.domain = format!("{}; corrupted on [{low}, {}]", spec.domain, r1(low + width));
                    }
                    Category::MlpApproximated => {
                        spec.description = format!("an MLP approximating {}", spec.description);
                        mlp_slots.push(functions.len());
                    }
                    _ => {}
                }
                spec
            };
            functions.push(spec);
        }
        let targets: Vec<String> = mlp_slots.iter().map(|&i| functions[i].definition.clone()).collect();
        for (slot, mlp) in mlp_slots.into_iter().zip(fit_mlps(&targets, seed)?) {
            functions[slot].mlp = Some(mlp);
        }
        let prims = primitives();
        for k in 0..strings {
            let id = numeric + k;
            let test_inputs: Vec<String> = (0..10).map(|_| random_word(&mut rng)).collect();
            let composed = k * 100 / strings.max(1) >= 30;
            let (definition, description) = loop {
                let first = prims.choose(&mut rng).cloned().unwrap_or_default();
                if !composed {
                    break first;
                }
                let second = prims.choose(&mut rng).cloned().unwrap_or_default();
                let (both, description) = compose(&first, &second);
                let (f, g) = (&first.0, &second.0);
                let outputs = |e: &str| -> Vec<String> {
                    let parsed = Expr::parse(e).ok();
                    test_inputs
                        .iter()
                        .map(|t| parsed.as_ref().and_then(|p| p.eval_str(t).ok()).unwrap_or_default())
                        .collect()
                };
                let combined = outputs(&both);
                if combined != outputs(f) && combined != outputs(g) && combined != test_inputs {
                    break (both, description);
                }
            };
            let category = if composed { Category::StringComposed } else { Category::StringSimple };
            functions.push(FunctionSpec {
                id,
                category,
                description,
                domain: "strings".into(),
                definition,
                noise: None,
                corruption: None,
                mlp: None,
                test_inputs,
            });
        }
        Ok(Suite { seed, functions })
    }

    /// Writes the suite as JSON (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string(self)?;
        models::files::write_atomically(path, json.as_bytes())?;
        Ok(())
    }

    /// Reads a suite written by [`Suite::save`], checking that every definition parses.
    pub fn load(path: &Path) -> Result<Suite> {
        let bad = |why: String| FindError::InvalidInput(format!("suite {}: {why}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let suite: Suite = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        for f in &suite.functions {
            Expr::parse(&f.definition).map_err(|e| bad(format!("function {}: {e}", f.id)))?;
            if f.category.is_string() && f.test_inputs.is_empty() {
                return Err(bad(format!("string function {} has no test inputs", f.id)));
            }
        }
        Ok(suite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_is_reproducible_and_every_function_runs() {
        let suite = Suite::generate(7, 100, 100).unwrap();
        // MLP training sums in parallel, so its weights may differ in the last bits between runs; everything
        // else is identical, and the networks agree closely.
        let again = Suite::generate(7, 100, 100).unwrap();
        let strip = |s: &Suite| -> Vec<FunctionSpec> {
            s.functions.iter().map(|f| FunctionSpec { mlp: None, ..f.clone() }).collect()
        };
        assert!(strip(&suite) == strip(&again), "the suite is not reproducible");
        assert!(strip(&suite) != strip(&Suite::generate(8, 100, 100).unwrap()), "the seed must matter");
        for (a, b) in suite.functions.iter().zip(&again.functions).filter(|(a, _)| a.mlp.is_some()) {
            let (a, b) = (a.truth(10.5).unwrap(), b.truth(10.5).unwrap());
            assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "{a} vs {b}");
        }
        let count = |c: Category| suite.functions.iter().filter(|f| f.category == c).count();
        assert_eq!((count(Category::Composed), count(Category::MlpApproximated), count(Category::Clean)), (15, 15, 40));
        assert_eq!((count(Category::Noised), count(Category::Corrupted)), (15, 15));
        assert_eq!((count(Category::StringSimple), count(Category::StringComposed)), (30, 70));
        let mut rng = StdRng::seed_from_u64(0);
        for f in &suite.functions {
            if f.category.is_string() {
                assert_eq!(f.test_inputs.len(), 10);
                f.call_string(&f.test_inputs[0]).unwrap();
            } else {
                f.call_numeric(3.5, &mut rng).unwrap();
            }
        }
    }

    /// The fitted MLPs follow their targets (a 1-64-1 ReLU net is a coarse approximation: FIND's point).
    #[test]
    fn mlps_approximate_their_functions() {
        let definitions = vec!["2 * x + 1".to_string(), "10 * tanh(0.05 * x)".to_string()];
        for (mlp, d) in fit_mlps(&definitions, 0).unwrap().iter().zip(&definitions) {
            let e = Expr::parse(d).unwrap();
            let xs: Vec<f64> = (-128..128).map(|i| i as f64 + 0.5).collect();
            let num: f64 = xs.iter().map(|&x| (mlp.eval(x) - e.eval_num(x).unwrap()).powi(2)).sum();
            let den: f64 = xs.iter().map(|&x| e.eval_num(x).unwrap().powi(2)).sum();
            assert!(num / den < 0.05, "{d}: NMSE {}", num / den);
        }
    }

    #[test]
    fn noise_has_the_stated_moments() {
        let mut rng = StdRng::seed_from_u64(1);
        for (kind, mean, var) in
            [(NoiseKind::Normal, 0.0, 1.0), (NoiseKind::Uniform, 0.0, 1.0 / 3.0), (NoiseKind::Poisson, 1.0, 1.0)]
        {
            let draws: Vec<f64> = (0..20000).map(|_| kind.sample(&mut rng)).collect();
            let m = draws.iter().sum::<f64>() / 20000.0;
            let v = draws.iter().map(|d| (d - m).powi(2)).sum::<f64>() / 20000.0;
            assert!((m - mean).abs() < 0.03 && (v - var).abs() < 0.05, "{kind:?}: {m} {v}");
        }
    }
}
