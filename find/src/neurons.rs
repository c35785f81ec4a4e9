//! Neurons and features of a loaded model as FIND functions, so the same interpreters run on them unchanged: a
//! numeric function puts a number into a prompt template and returns the unit's activation at the last token; a
//! token function puts a string into a context template and returns the activation (as text, two decimals).

use models::tch::Tensor;
use models::{HookPoint, Hooks, Model};

use super::session::BlackBox;
use crate::error::{FindError, Result};
use crate::units::Units;
use crate::value::Value;

/// The activation `[seq, width]` at `point` of one run over `ids`.
pub fn record_point(model: &Model, ids: &[u32], point: HookPoint) -> Result<Tensor> {
    let mut hooks = Hooks::recording(move |p| p == point);
    let _logits = model.run_with_hooks(ids, &mut hooks)?;
    let activation = hooks.cache.require(point)?;
    Ok(activation.get(0))
}

/// The activation of unit `index` of `units` at the last token of `prompt`.
pub fn activation_at_end(model: &Model, units: &dyn Units, index: usize, prompt: &str) -> Result<f64> {
    let ids = model.encode(prompt)?;
    let activations = units.activations(model, &ids)?;
    Ok(f64::try_from(activations.get(ids.len() as i64 - 1).get(index as i64)).map_err(models::ModelError::from)?)
}

/// A unit to call: which one, and the text it is read on.
struct Probe<'a> {
    model: &'a Model,
    units: Box<dyn Units + 'a>,
    index: usize,
    template: String,
}

impl<'a> Probe<'a> {
    fn new(model: &'a Model, units: Box<dyn Units + 'a>, index: usize, template: &str) -> Result<Self> {
        units.check(model, index)?;
        if !template.contains("{x}") {
            return Err(FindError::InvalidInput(format!("the template {template:?} has no {{x}}")));
        }
        Ok(Probe { model, units, index, template: template.to_string() })
    }

    /// The unit's activation at the end of the template with `x` written in.
    fn at(&self, x: &str) -> Result<f64> {
        activation_at_end(self.model, self.units.as_ref(), self.index, &self.template.replace("{x}", x))
    }

    /// "neuron 12 of layer 5", "feature 40 of layer 15".
    fn name(&self) -> String {
        format!("{} {} of layer {}", self.units.kind().title().to_lowercase(), self.index, self.units.layer())
    }
}

/// A neuron or feature as a function of a number.
pub struct UnitNumeric<'a>(Probe<'a>);

impl<'a> UnitNumeric<'a> {
    /// f(x) = the activation of unit `index` of `units` at the last token of `template` with `{x}` replaced by x.
    pub fn new(model: &'a Model, units: Box<dyn Units + 'a>, index: usize, template: &str) -> Result<Self> {
        Ok(UnitNumeric(Probe::new(model, units, index, template)?))
    }
}

/// A number as a person writes it: integers without a decimal point.
fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

impl BlackBox for UnitNumeric<'_> {
    fn numeric_input(&self) -> bool {
        true
    }

    fn hint(&self) -> Option<String> {
        Some(format!(
            "f(x) is the activation of {} on the last token of the text {:?} with x written in.",
            self.0.name(),
            self.0.template
        ))
    }

    fn call(&mut self, x: &Value) -> Result<Value> {
        match x {
            Value::Num(v) => Ok(Value::Num(self.0.at(&number_text(*v))?)),
            Value::Str(s) => Err(FindError::InvalidInput(format!("a numeric unit function got {s:?}"))),
        }
    }
}

/// A neuron or feature as a function of a token (any string), in a context.
pub struct UnitToken<'a>(Probe<'a>);

impl<'a> UnitToken<'a> {
    /// f(x) = the activation of unit `index` of `units` at the last token of `context` with `{x}` replaced by x,
    /// as text.
    pub fn new(model: &'a Model, units: Box<dyn Units + 'a>, index: usize, context: &str) -> Result<Self> {
        Ok(UnitToken(Probe::new(model, units, index, context)?))
    }
}

impl BlackBox for UnitToken<'_> {
    fn numeric_input(&self) -> bool {
        false
    }

    fn hint(&self) -> Option<String> {
        Some(format!(
            "f(x) is the activation of {} after the text {:?} with x written in, to two decimals.",
            self.0.name(),
            self.0.template
        ))
    }

    fn call(&mut self, x: &Value) -> Result<Value> {
        let text = match x {
            Value::Str(s) => s.clone(),
            Value::Num(v) => number_text(*v),
        };
        Ok(Value::Str(format!("{:.2}", self.0.at(&text)?)))
    }
}
