//! Neurons of a loaded model as FIND functions, so the same interpreters run on them unchanged: a numeric
//! function puts a number into a prompt template and returns the neuron's activation at the last token; a token
//! function puts a string into a context template and returns the activation (as text, two decimals).

use models::tch::Tensor;
use models::{HookPoint, Hooks, Model, Neuron};

use super::session::BlackBox;
use crate::error::{FindError, Result};
use crate::value::Value;

/// The activation `[seq, width]` at `point` of one run over `ids`.
pub fn record_point(model: &Model, ids: &[u32], point: HookPoint) -> Result<Tensor> {
    let mut hooks = Hooks::recording(move |p| p == point);
    let _logits = model.run_with_hooks(ids, &mut hooks)?;
    let activation = hooks.cache.require(point)?;
    Ok(activation.get(0))
}

/// The activation of `neuron` (`mlp.hook_post`) at the last token of `prompt`.
pub fn activation_at_end(model: &Model, neuron: Neuron, prompt: &str) -> Result<f64> {
    let ids = model.encode(prompt)?;
    let activation = record_point(model, &ids, HookPoint::MlpPost(neuron.layer))?;
    let value = activation.get(ids.len() as i64 - 1).get(neuron.index as i64);
    Ok(f64::try_from(value).map_err(models::ModelError::from)?)
}

fn check(model: &Model, neuron: Neuron, template: &str) -> Result<()> {
    let shape = model.shape();
    if neuron.layer >= shape.n_layers || neuron.index >= shape.d_mlp {
        return Err(FindError::InvalidInput(format!(
            "neuron {}.{} does not exist: {} layers of {} neurons",
            neuron.layer, neuron.index, shape.n_layers, shape.d_mlp
        )));
    }
    if !template.contains("{x}") {
        return Err(FindError::InvalidInput(format!("the template {template:?} has no {{x}}")));
    }
    Ok(())
}

/// A neuron as a function of a number.
pub struct NeuronNumeric<'a> {
    model: &'a Model,
    neuron: Neuron,
    template: String,
}

impl<'a> NeuronNumeric<'a> {
    /// f(x) = the activation of `neuron` at the last token of `template` with `{x}` replaced by x.
    pub fn new(model: &'a Model, neuron: Neuron, template: &str) -> Result<Self> {
        check(model, neuron, template)?;
        Ok(NeuronNumeric { model, neuron, template: template.to_string() })
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

impl BlackBox for NeuronNumeric<'_> {
    fn numeric_input(&self) -> bool {
        true
    }

    fn hint(&self) -> Option<String> {
        Some(format!(
            "f(x) is the activation of neuron {} of layer {} on the last token of the text {:?} with x written in.",
            self.neuron.index, self.neuron.layer, self.template
        ))
    }

    fn call(&mut self, x: &Value) -> Result<Value> {
        match x {
            Value::Num(v) => {
                let prompt = self.template.replace("{x}", &number_text(*v));
                Ok(Value::Num(activation_at_end(self.model, self.neuron, &prompt)?))
            }
            Value::Str(s) => Err(FindError::InvalidInput(format!("a numeric neuron function got {s:?}"))),
        }
    }
}

/// A neuron as a function of a token (any string), in a context.
pub struct NeuronToken<'a> {
    model: &'a Model,
    neuron: Neuron,
    context: String,
}

impl<'a> NeuronToken<'a> {
    /// f(x) = the activation of `neuron` at the last token of `context` with `{x}` replaced by x, as text.
    pub fn new(model: &'a Model, neuron: Neuron, context: &str) -> Result<Self> {
        check(model, neuron, context)?;
        Ok(NeuronToken { model, neuron, context: context.to_string() })
    }
}

impl BlackBox for NeuronToken<'_> {
    fn numeric_input(&self) -> bool {
        false
    }

    fn hint(&self) -> Option<String> {
        Some(format!(
            "f(x) is the activation of neuron {} of layer {} after the text {:?} with x written in, to two decimals.",
            self.neuron.index, self.neuron.layer, self.context
        ))
    }

    fn call(&mut self, x: &Value) -> Result<Value> {
        let text = match x {
            Value::Str(s) => s.clone(),
            Value::Num(v) => number_text(*v),
        };
        let prompt = self.context.replace("{x}", &text);
        Ok(Value::Str(format!("{:.2}", activation_at_end(self.model, self.neuron, &prompt)?)))
    }
}
