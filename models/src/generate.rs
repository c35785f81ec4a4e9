//! Text generation with a KV cache: greedy or seeded sampling (temperature, top-k, top-p), stop sequences,
//! and batches of prompts with left padding.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::arch::KvCache;
use crate::error::{ModelError, Result};
use crate::hooks::Hooks;
use crate::model::{Batch, Model};
use crate::tokenizer::ChatMessage;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Sampling {
    /// The most likely token.
    Greedy,
    /// A draw from the tempered, truncated distribution. Row i of a batch uses the seed `seed + i`, so a
    /// prompt's sample does not depend on what else is in its batch.
    Random {
        /// Softmax temperature (> 0).
        temperature: f64,
        /// Keep only the k most likely tokens.
        top_k: Option<usize>,
        /// Keep the smallest set of tokens whose probability reaches p.
        top_p: Option<f64>,
        /// Random seed.
        seed: u64,
    },
}

/// Settings of one generation call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationConfig {
    /// Most new tokens per prompt.
    pub max_new_tokens: usize,
    /// Greedy or sampled.
    pub sampling: Sampling,
    /// Generation of a prompt stops when its text contains one of these; the text is cut before it.
    pub stop_sequences: Vec<String>,
    /// Stop at the model's end-of-sequence token.
    pub stop_at_eos: bool,
}

impl GenerationConfig {
    /// Greedy decoding of up to `max_new_tokens`, stopping at EOS.
    pub fn greedy(max_new_tokens: usize) -> Self {
        GenerationConfig { max_new_tokens, sampling: Sampling::Greedy, stop_sequences: Vec::new(), stop_at_eos: true }
    }
}

/// Why generation of one prompt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StopReason {
    /// The model produced its end-of-sequence token.
    Eos,
    /// The text reached a stop sequence.
    StopSequence(String),
    /// `max_new_tokens` were generated.
    MaxTokens,
    /// The context window is full.
    ContextFull,
}

/// The continuation of one prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generation {
    /// Generated token ids (without EOS; up to the token that completed a stop sequence).
    pub tokens: Vec<u32>,
    /// Their text, cut before any stop sequence.
    pub text: String,
    /// Why it ended.
    pub stop: StopReason,
}

struct RowState {
    tokens: Vec<u32>,
    text: String,
    stop: Option<StopReason>,
    rng: Option<StdRng>,
}

impl Model {
    /// The prompt text of a one-turn chat, rendered with the model's chat template.
    pub fn chat_prompt(&self, user_message: &str) -> Result<String> {
        self.tokenizer.apply_chat_template(&[ChatMessage::user(user_message)], true)
    }

    /// Generates continuations of text prompts.
    pub fn generate_text(&self, prompts: &[&str], config: &GenerationConfig) -> Result<Vec<Generation>> {
        let ids: Vec<Vec<u32>> = prompts.iter().map(|p| self.encode(p)).collect::<Result<_>>()?;
        self.generate(&ids, config, &mut Hooks::default())
    }

    /// Generates continuations of tokenized prompts as one batch; `hooks` apply at every step (e.g. steering).
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        config: &GenerationConfig,
        hooks: &mut Hooks,
    ) -> Result<Vec<Generation>> {
        if let Sampling::Random { temperature, top_p, .. } = &config.sampling {
            if *temperature <= 0.0 || top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
                return Err(ModelError::InvalidInput("sampling needs temperature > 0 and top_p in (0, 1]".into()));
            }
        }
        let _guard = tch::no_grad_guard();
        let batch = self.batch(prompts)?;
        let context = self.shape().context_length as i64;
        let budget = (config.max_new_tokens as i64).min(context - batch.seq_len());
        let mut cache =
            KvCache::new(self.shape(), batch.size() as i64, batch.seq_len() + budget.max(0), self.device, self.kind);
        let mut rows: Vec<RowState> = (0..batch.size())
            .map(|i| RowState {
                tokens: Vec::new(),
                text: String::new(),
                stop: None,
                rng: match &config.sampling {
                    Sampling::Random { seed, .. } => Some(StdRng::seed_from_u64(seed.wrapping_add(i as u64))),
                    Sampling::Greedy => None,
                },
            })
            .collect();
        let mut valid = batch.valid.as_ref().map(Tensor::shallow_clone);
        let mut positions: Vec<i64> = batch.lengths.iter().map(|&l| l as i64).collect();
        let mut hidden = self.forward(&batch, Some(&mut cache), hooks)?;
        for step in 0..budget {
            let logits = self.arch().unembed(&hidden.select(1, -1)).to_kind(Kind::Float);
            let next = self.choose(&logits, &mut rows, &config.sampling)?;
            for (row, &token) in rows.iter_mut().zip(&next) {
                if row.stop.is_none() {
                    self.accept(row, token, config);
                }
            }
            if rows.iter().all(|r| r.stop.is_some()) || step + 1 == budget {
                break;
            }
            let pad = self.tokenizer.padding_id();
            let ids: Vec<i64> =
                rows.iter().zip(&next).map(|(r, &t)| i64::from(if r.stop.is_some() { pad } else { t })).collect();
            let n = ids.len() as i64;
            valid = valid.map(|v| Tensor::cat(&[v, Tensor::ones([n, 1], (Kind::Bool, self.device))], 1));
            let step_batch = Batch {
                ids: Tensor::from_slice(&ids).view([n, 1]).to_device(self.device),
                positions: Tensor::from_slice(&positions).view([n, 1]).to_device(self.device),
                valid: valid.as_ref().map(Tensor::shallow_clone),
                lengths: vec![1; ids.len()],
            };
            positions.iter_mut().for_each(|p| *p += 1);
            hidden = self.forward(&step_batch, Some(&mut cache), hooks)?;
        }
        let out_of_room = budget < config.max_new_tokens as i64;
        Ok(rows
            .into_iter()
            .map(|r| {
                let stop = r.stop.unwrap_or(if out_of_room { StopReason::ContextFull } else { StopReason::MaxTokens });
                let text = if matches!(stop, StopReason::StopSequence(_)) {
                    r.text
                } else {
                    self.tokenizer.decode(&r.tokens, true).unwrap_or_default()
                };
                Generation { tokens: r.tokens, text, stop }
            })
            .collect())
    }

    /// Adds `token` to a row and checks the stop conditions.
    fn accept(&self, row: &mut RowState, token: u32, config: &GenerationConfig) {
        if config.stop_at_eos && Some(token) == self.tokenizer.eos_id {
            row.stop = Some(StopReason::Eos);
            return;
        }
        row.tokens.push(token);
        if config.stop_sequences.is_empty() {
            return;
        }
        let text = self.tokenizer.decode(&row.tokens, true).unwrap_or_default();
        if let Some((at, seq)) = config
            .stop_sequences
            .iter()
            .filter_map(|s| text.find(s.as_str()).map(|at| (at, s)))
            .min_by_key(|(at, _)| *at)
        {
            row.text = text[..at].to_string();
            row.stop = Some(StopReason::StopSequence(seq.clone()));
        }
    }

    /// The next token of each row from its logits `[batch, vocab]`.
    fn choose(&self, logits: &Tensor, rows: &mut [RowState], sampling: &Sampling) -> Result<Vec<u32>> {
        match sampling {
            Sampling::Greedy => {
                let ids: Vec<i64> = Vec::try_from(logits.argmax(-1, false).to_device(tch::Device::Cpu))?;
                Ok(ids.into_iter().map(|i| i as u32).collect())
            }
            Sampling::Random { temperature, top_k, top_p, .. } => {
                let probs = (logits / *temperature).softmax(-1, Kind::Float).to_device(tch::Device::Cpu);
                rows.iter_mut()
                    .enumerate()
                    .map(|(i, row)| {
                        let p: Vec<f32> = Vec::try_from(probs.get(i as i64))?;
                        let rng = row
                            .rng
                            .as_mut()
                            .ok_or_else(|| ModelError::InvalidInput("sampling without a seed".into()))?;
                        Ok(sample(&p, *top_k, *top_p, rng))
                    })
                    .collect()
            }
        }
    }
}

/// Draws a token from `probs` after keeping the `top_k` most likely and the `top_p` nucleus.
pub fn sample(probs: &[f32], top_k: Option<usize>, top_p: Option<f64>, rng: &mut impl Rng) -> u32 {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_unstable_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let mut keep = top_k.unwrap_or(order.len()).clamp(1, order.len());
    if let Some(p) = top_p {
        let mut mass = 0.0f64;
        let nucleus = order.iter().take_while(|&&i| {
            let inside = mass < p;
            mass += f64::from(probs[i]);
            inside
        });
        keep = keep.min(nucleus.count().max(1));
    }
    let kept = &order[..keep];
    let total: f64 = kept.iter().map(|&i| f64::from(probs[i])).sum();
    let mut draw = rng.gen::<f64>() * total;
    for &i in kept {
        draw -= f64::from(probs[i]);
        if draw <= 0.0 {
            return i as u32;
        }
    }
    kept[keep - 1] as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_one_is_argmax_and_top_p_truncates() {
        let probs = [0.1f32, 0.6, 0.3];
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..20 {
            assert_eq!(sample(&probs, Some(1), None, &mut rng), 1);
            // the nucleus for p = 0.5 is {1}; for p = 0.8 it is {1, 2}
            assert_eq!(sample(&probs, None, Some(0.5), &mut rng), 1);
            assert_ne!(sample(&probs, None, Some(0.8), &mut rng), 0);
        }
    }

    #[test]
    fn sampling_follows_the_distribution() {
        let probs = [0.25f32, 0.75];
        let mut rng = StdRng::seed_from_u64(7);
        let ones = (0..4000).filter(|_| sample(&probs, None, None, &mut rng) == 1).count();
        assert!((2850..3150).contains(&ones), "{ones} of 4000 draws were token 1, expected about 3000");
    }
}
