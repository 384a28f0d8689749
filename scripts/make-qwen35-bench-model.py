#!/usr/bin/env python3
"""Random-weight Qwen3.5-0.8B checkpoint (Hugging Face layout) for speed benchmarks.

No real weights are involved: the shape is Qwen/Qwen3.5-0.8B's config.json (see
/work/shared/fixtures/README.md, "The real Qwen3.5-0.8B shape"), the weights are random. The
outputs are meaningless text; the point is a file of the real size and layout, so that
llama.cpp and qwenkit can be timed on the same GGUF.

    python3 scripts/make-qwen35-bench-model.py OUT_DIR [--seed 0] [--no-mtp] [--check]

Needs torch, transformers >= 5.23 (Qwen3_5ForCausalLM), safetensors. Usually run through
scripts/make-qwen35-bench-gguf.sh, which converts the folder to GGUF with llama.cpp's converter;
then compare the engines with

    benchmarks/compare-llamacpp.sh -m third_party/qwen35-0.8b-random-q8_0.gguf

(LLAMACPP_DIR=/other/checkout/third_party/llamacpp reuses a llama.cpp built elsewhere).

What the folder holds, laid out like the Qwen3.5 releases:
- config.json: nested (`Qwen3_5ForConditionalGeneration`, `model_type` qwen3_5, `text_config`,
  and the release's `vision_config`), but no vision weights: a text-only checkpoint.
  transformers loads it as Qwen3_5ForCausalLM; llama.cpp's convert_hf_to_gguf.py skips vision.
- model.safetensors: bf16, text tensors under `model.language_model.`, plus the MTP block
  (`mtp.*`, as in the releases, so the GGUF has block_count 25 like a converted release;
  --no-mtp leaves it out and sets mtp_num_hidden_layers 0).
- generation_config.json, tokenizer.json, tokenizer_config.json (the Qwen3.5 tokenizer from
  the fixtures).

Initialisation (as the tiny Qwen3.5 fixtures, so activations stay at a sane scale):
projections N(0, 1/fan_in); zero-centred norms 0.1*N(0,1) (the runtime multiplies by 1 + w);
linear_attn.norm 1 + 0.1*N(0,1); A_log N(0, 0.5^2); dt_bias -5 + 0.5*N(0,1). The embedding is
N(0, 0.1^2) rather than the fixtures' N(0,1): it is also the (tied) output matrix, and with
hidden size 1024 a unit-variance embedding would give logits with a standard deviation of ~32.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import torch

FIXTURES = os.environ.get("QWEN35_FIXTURES", "/work/shared/fixtures")

N_LAYERS = 24
TEXT_CONFIG = {
    "architectures": None,  # removed below; only the outer config names the class
    "attention_bias": False,
    "attention_dropout": 0.0,
    "attn_output_gate": True,
    "dtype": "bfloat16",
    "eos_token_id": 248044,
    "full_attention_interval": 4,
    "head_dim": 256,
    "hidden_act": "silu",
    "hidden_size": 1024,
    "initializer_range": 0.02,
    "intermediate_size": 3584,
    "layer_types": (["linear_attention"] * 3 + ["full_attention"]) * (N_LAYERS // 4),
    "linear_conv_kernel_dim": 4,
    "linear_key_head_dim": 128,
    "linear_num_key_heads": 16,
    "linear_num_value_heads": 16,
    "linear_value_head_dim": 128,
    "mamba_ssm_dtype": "float32",
    "max_position_embeddings": 262144,
    "mlp_only_layers": [],
    "model_type": "qwen3_5_text",
    "mtp_num_hidden_layers": 1,
    "mtp_use_dedicated_embeddings": False,
    "num_attention_heads": 8,
    "num_hidden_layers": N_LAYERS,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_parameters": {
        "mrope_interleaved": True,
        "mrope_section": [11, 11, 10],
        "rope_type": "default",
        "rope_theta": 10000000,
        "partial_rotary_factor": 0.25,
    },
    "tie_word_embeddings": True,
    "use_cache": True,
    "vocab_size": 248320,
}
del TEXT_CONFIG["architectures"]

VISION_CONFIG = {
    "deepstack_visual_indexes": [],
    "depth": 12,
    "hidden_act": "gelu_pytorch_tanh",
    "hidden_size": 768,
    "in_channels": 3,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "model_type": "qwen3_5",
    "num_heads": 12,
    "num_position_embeddings": 2304,
    "out_hidden_size": 1024,
    "patch_size": 16,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
}

EMBED_STD = 0.1


def init_tensor(name: str, shape, gen: torch.Generator) -> torch.Tensor:
    """float32 random values for the tensor `name` (HF name without the model prefix)."""
    def normal(std=1.0, mean=0.0):
        return torch.randn(shape, generator=gen, dtype=torch.float32) * std + mean

    if name.endswith("embed_tokens.weight"):
        return normal(EMBED_STD)
    if name.endswith("linear_attn.norm.weight"):
        return normal(0.1, 1.0)
    if name.endswith("A_log"):
        return normal(0.5)
    if name.endswith("dt_bias"):
        return normal(0.5, -5.0)
    if len(shape) == 1:  # every other 1-D weight is a zero-centred RMSNorm weight
        return normal(0.1)
    if name.endswith("conv1d.weight"):  # [C, 1, K]: fan-in is the kernel taps
        return normal(1.0 / math.sqrt(shape[-1]))
    if len(shape) == 2:  # nn.Linear [out, in]
        return normal(1.0 / math.sqrt(shape[1]))
    raise ValueError(f"no init rule for {name} {tuple(shape)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output folder (created)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-mtp", action="store_true", help="leave out the MTP block")
    ap.add_argument("--check", action="store_true",
                    help="load the folder back with Qwen3_5ForCausalLM and run a short prompt")
    args = ap.parse_args()

    import transformers
    from transformers import Qwen3_5Config, Qwen3_5ForCausalLM, Qwen3_5TextConfig
    from safetensors.torch import save_file

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    t0 = time.time()
    text_config = dict(TEXT_CONFIG)
    if args.no_mtp:
        text_config["mtp_num_hidden_layers"] = 0

    # Build the text model from the config; it defines every tensor name and shape.
    model = Qwen3_5ForCausalLM._from_config(Qwen3_5TextConfig(**text_config), dtype=torch.bfloat16)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    del model
    shapes.pop("lm_head.weight", None)  # tied to the embedding: not stored

    # The MTP block of the releases: one full-attention decoder layer with its FFN, and
    # fc [H, 2H] over the concatenated (normalised) embedding and hidden state.
    if not args.no_mtp:
        H = text_config["hidden_size"]
        full = text_config["layer_types"].index("full_attention")
        for k, s in list(shapes.items()):
            pre = f"model.layers.{full}."
            if k.startswith(pre):
                shapes["mtp.layers.0." + k[len(pre):]] = s
        shapes["mtp.fc.weight"] = (H, 2 * H)
        for n in ("pre_fc_norm_embedding", "pre_fc_norm_hidden", "norm"):
            shapes[f"mtp.{n}.weight"] = (H,)

    gen = torch.Generator().manual_seed(args.seed)
    tensors = {}
    for k in sorted(shapes):
        name = "model.language_model." + k[len("model."):] if k.startswith("model.") else k
        tensors[name] = init_tensor(k, shapes[k], gen).to(torch.bfloat16).contiguous()
    n_params = sum(t.numel() for t in tensors.values())

    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    del tensors

    config = Qwen3_5Config(text_config=text_config, vision_config=VISION_CONFIG,
                           image_token_id=248056, video_token_id=248057,
                           vision_start_token_id=248053, vision_end_token_id=248054,
                           tie_word_embeddings=True)
    config.architectures = ["Qwen3_5ForConditionalGeneration"]
    config.save_pretrained(args.out)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 248044, "do_sample": False, "eos_token_id": [248046, 248044],
                   "pad_token_id": 248044, "transformers_version": transformers.__version__}, f, indent=2)
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(FIXTURES, "qwen3.5-tokenizer", fn), os.path.join(args.out, fn))
    print(f"wrote {args.out}: {n_params / 1e6:.1f} M parameters (bf16, seed {args.seed}) "
          f"in {time.time() - t0:.0f} s", file=sys.stderr)

    if args.check:
        check(args.out)


def check(out):
    """Load as transformers does and look at the activations of a short prompt."""
    from transformers import AutoTokenizer, Qwen3_5ForCausalLM
    model, info = Qwen3_5ForCausalLM.from_pretrained(out, dtype=torch.float32, output_loading_info=True)
    missing = [k for k in info["missing_keys"] if k != "lm_head.weight"]
    assert not missing, f"missing keys: {missing[:5]}"
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("The quick brown fox jumps over the lazy dog", return_tensors="pt").input_ids
    with torch.no_grad():
        o = model(ids, output_hidden_states=True)
    rms = [h[0].pow(2).mean().sqrt().item() for h in o.hidden_states]
    lg = o.logits[0].float()
    top2 = lg.topk(2, dim=-1).values
    print(f"check: unexpected keys {len(info['unexpected_keys'])}, "
          f"residual RMS per layer {' '.join(f'{r:.2f}' for r in rms)}", file=sys.stderr)
    print(f"check: logits std {lg.std().item():.2f}, max |logit| {lg.abs().max().item():.1f}, "
          f"min top1-top2 {(top2[:, 0] - top2[:, 1]).min().item():.3g}, "
          f"greedy next: {tok.decode(lg[-1].argmax().item())!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
