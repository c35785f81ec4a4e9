"""SAELens's view of a dictionary the workbench saved, as the reference for its format, encodings and metrics.

usage: saelens_reference.py SAE_DIR INPUTS.safetensors RESAVE_DIR [MODEL_DIR TOKENS.json]
Loads SAE_DIR with sae_lens (SAE.load_from_disk), encodes and reconstructs the `x` tensor of INPUTS (written to
RESAVE_DIR/reference.safetensors as `features` and `out`), and saves the dictionary again into RESAVE_DIR with
sae_lens's own save_model. With a Hugging Face MODEL_DIR and token ids (a list per text, each text's first token
occurring nowhere else in it), also measures the dictionary on those tokens: a sparse autoencoder with SAELens's
evals (get_sparsity_and_variance_metrics and get_downstream_reconstruction_metrics on TransformerLens's
TransformerBridge, the first tokens as ignore_tokens); a transcoder the same way by hand (its output spliced at
hook_name_out from its input at hook_name, SAELens's KL), since SAELens's evals splice at one hook only.
Prints JSON: architecture, and the metrics when measured.
"""
import json
import sys

import torch
from safetensors.torch import load_file, save_file
from sae_lens import SAE
from sae_lens import evals
from sae_lens.training.activation_scaler import ActivationScaler

torch.set_num_threads(2)
sae_dir, inputs_path, resave_dir = sys.argv[1:4]
sae = SAE.load_from_disk(sae_dir, device="cpu")
x = load_file(inputs_path)["x"]
with torch.no_grad():
    features = sae.encode(x)
    out = sae.forward(x)
save_file({"features": features.contiguous(), "out": out.contiguous()}, f"{resave_dir}/reference.safetensors")
sae.save_model(resave_dir)
result = {"architecture": sae.cfg.architecture()}

if len(sys.argv) > 4:
    from transformer_lens.model_bridge import TransformerBridge

    model_dir, tokens_path = sys.argv[4:6]
    texts = json.load(open(tokens_path))
    for ids in texts:
        assert ids[0] not in ids[1:], "each text's first token must occur only there"
    ignore = sorted({ids[0] for ids in texts})
    bridge = TransformerBridge.boot_transformers(model_dir, device="cpu", dtype=torch.float32)

    class Texts:
        """The activation store SAELens's evals read batches of tokens from: one text per batch."""

        def __init__(self):
            self.next = 0

        def get_batch_tokens(self, _n):
            ids = texts[self.next % len(texts)]
            self.next += 1
            return torch.tensor([ids])

    hook_in = sae.cfg.metadata.hook_name
    hook_out = sae.cfg.metadata.hook_name_out
    with torch.no_grad():
        if hook_out is None:
            metrics, feature_metrics = evals.get_sparsity_and_variance_metrics(
                sae, bridge, Texts(), ActivationScaler(), n_batches=len(texts), compute_l2_norms=True,
                compute_sparsity_metrics=True, compute_variance_metrics=True,
                compute_featurewise_density_statistics=True, eval_batch_size_prompts=1, model_kwargs={},
                ignore_tokens=ignore,
            )
            metrics.update(evals.get_downstream_reconstruction_metrics(
                sae, bridge, Texts(), ActivationScaler(), compute_kl=True, compute_ce_loss=True,
                n_batches=len(texts), eval_batch_size_prompts=1, ignore_tokens=ignore,
            ))
            metrics["feature_density"] = feature_metrics["feature_density"]
        else:
            sums = {"ce_loss_without_sae": [], "ce_loss_with_sae": [], "ce_loss_with_ablation": [],
                    "kl_div_with_sae": [], "kl_div_with_ablation": []}
            calc = evals.ExplainedVarianceCalculator()
            l0 = []
            for ids in texts:
                tokens = torch.tensor([ids])
                keep = torch.tensor([[t not in ignore for t in ids]])
                clean_logits, clean_ce = bridge(tokens, return_type="both", loss_per_token=True)
                _, cache = bridge.run_with_cache(tokens, names_filter=[hook_in, hook_out])
                sae_in, sae_target = cache[hook_in], cache[hook_out]
                feats = sae.encode(sae_in)
                l0.append((feats[keep] != 0).sum(-1).float())
                calc.add_batch(sae.forward(sae_in)[keep], sae_target[keep])
                stash = {}

                def read(acts, hook):
                    stash["in"] = acts
                    return acts

                def splice(acts, hook):
                    return torch.where(keep[..., None], sae.forward(stash["in"]).to(acts.dtype), acts)

                def ablate(acts, hook):  # every position, as SAELens's standard_zero_ablate_hook
                    return torch.zeros_like(acts)

                spliced_logits, spliced_ce = bridge.run_with_hooks(
                    tokens, return_type="both", loss_per_token=True, fwd_hooks=[(hook_in, read), (hook_out, splice)])
                ablated_logits, ablated_ce = bridge.run_with_hooks(
                    tokens, return_type="both", loss_per_token=True, fwd_hooks=[(hook_out, ablate)])
                ce_keep = keep[:, :-1]
                sums["ce_loss_without_sae"].append(clean_ce[ce_keep])
                sums["ce_loss_with_sae"].append(spliced_ce[ce_keep])
                sums["ce_loss_with_ablation"].append(ablated_ce[ce_keep])
                sums["kl_div_with_sae"].append(evals._kl(clean_logits, spliced_logits)[keep])
                sums["kl_div_with_ablation"].append(evals._kl(clean_logits, ablated_logits)[keep])
            metrics = {name: torch.cat(values).mean().item() for name, values in sums.items()}
            metrics["l0"] = torch.cat(l0).mean().item()
            metrics["explained_variance"] = calc.compute()
            metrics["ce_loss_score"] = (metrics["ce_loss_with_ablation"] - metrics["ce_loss_with_sae"]) / (
                metrics["ce_loss_with_ablation"] - metrics["ce_loss_without_sae"])
            metrics["kl_div_score"] = (metrics["kl_div_with_ablation"] - metrics["kl_div_with_sae"]) / metrics[
                "kl_div_with_ablation"]
    result["metrics"] = metrics
print(json.dumps(result))
