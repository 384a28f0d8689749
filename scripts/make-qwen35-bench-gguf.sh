#!/usr/bin/env bash
# Random-weight Qwen3.5-0.8B GGUFs for speed comparisons with llama.cpp (no real weights: the
# real model's shape and layout, random values; see scripts/make-qwen35-bench-model.py).
#
#   scripts/make-qwen35-bench-gguf.sh [-s SEED] [-f]        (-f: regenerate everything)
#
# Writes, all under third_party/ (git-ignored):
#   qwen35-0.8b-random/              the Hugging Face checkpoint (bf16, text only, MTP block)
#   qwen35-0.8b-random-q8_0.gguf     convert_hf_to_gguf.py --outtype q8_0
#   qwen35-0.8b-random-bf16.gguf     convert_hf_to_gguf.py --outtype bf16 (input of the next)
#   qwen35-0.8b-random-q4_k_m.gguf   llama-quantize ... Q4_K_M (only when llama-quantize is built)
#
# llama.cpp comes from the tree that `benchmarks/compare-llamacpp.sh -b` unpacks and builds
# (third_party/llamacpp, or $LLAMACPP_DIR): its convert_hf_to_gguf.py and gguf-py convert, and
# its build/bin/llama-quantize, if built, quantizes (cmake may be the one in its venv):
#   PATH=third_party/llamacpp/venv/bin:$PATH nice -n 19 \
#     cmake --build third_party/llamacpp/build --target llama-quantize -j2
# Python: $PYTHON (default /work/refvenv/bin/python when present, else python3) needs torch,
# transformers >= 5.23, safetensors, numpy, sentencepiece (llama.cpp's converter requirements).
# Heavy steps run under `nice -n 19`. Then:
#   benchmarks/compare-llamacpp.sh -m third_party/qwen35-0.8b-random-q8_0.gguf
#   LLAMACPP_DIR=/other/checkout/third_party/llamacpp benchmarks/compare-llamacpp.sh -m ...
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SEED=0; FORCE=0
while getopts "s:f" opt; do
  case $opt in s) SEED=$OPTARG ;; f) FORCE=1 ;; *) exit 2 ;; esac
done

TP=${LLAMACPP_DIR:-$ROOT/third_party/llamacpp}
LCPP=$TP/src/vendor/llama.cpp
[[ -f $LCPP/convert_hf_to_gguf.py ]] ||
  { echo "no $LCPP/convert_hf_to_gguf.py: run benchmarks/compare-llamacpp.sh -b first" >&2; exit 1; }
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x /work/refvenv/bin/python ]]; then PYTHON=/work/refvenv/bin/python; else PYTHON=python3; fi
fi

OUT=$ROOT/third_party
HF=$OUT/qwen35-0.8b-random
Q8=$OUT/qwen35-0.8b-random-q8_0.gguf
BF16=$OUT/qwen35-0.8b-random-bf16.gguf
Q4=$OUT/qwen35-0.8b-random-q4_k_m.gguf
mkdir -p "$OUT"
if [[ $FORCE == 1 ]]; then rm -rf "$HF" "$Q8" "$BF16" "$Q4"; fi

if [[ ! -f $HF/model.safetensors ]]; then
  nice -n 19 "$PYTHON" scripts/make-qwen35-bench-model.py "$HF" --seed "$SEED"
fi
convert() {  # outtype file
  [[ -f $2 ]] && return 0
  nice -n 19 "$PYTHON" "$LCPP/convert_hf_to_gguf.py" "$HF" --outtype "$1" --outfile "$2.tmp" \
    >"$2.log" 2>&1 || { tail -20 "$2.log" >&2; exit 1; }
  mv "$2.tmp" "$2"
}
convert q8_0 "$Q8"
echo "Q8_0:   $Q8"

QUANTIZE=$TP/build/bin/llama-quantize
if [[ -x $QUANTIZE ]]; then
  convert bf16 "$BF16"
  echo "BF16:   $BF16"
  if [[ ! -f $Q4 ]]; then
    nice -n 19 "$QUANTIZE" "$BF16" "$Q4.tmp" Q4_K_M "$(nproc)" >"$Q4.log" 2>&1 ||
      { tail -20 "$Q4.log" >&2; exit 1; }
    mv "$Q4.tmp" "$Q4"
  fi
  echo "Q4_K_M: $Q4"
else
  echo "no $QUANTIZE: Q4_K_M skipped (PATH=$TP/venv/bin:\$PATH cmake --build $TP/build --target llama-quantize -j2)" >&2
fi
echo "HF checkpoint: $HF"
