#!/usr/bin/env bash
# Side-by-side speed comparison: llama.cpp's llama-bench vs `qwenkit bench`, same GGUF, same
# threads, alternating A B A B. Run by hand, not in CI (it builds llama.cpp, minutes on 2 cores).
#
#   benchmarks/compare-llamacpp.sh [-m GGUF] [-t "1 2"] [-r 3] [-p 512] [-n 128] [-k 2] [-f 30] [-i avx2]
#
# -i avx2: both engines held to AVX2/FMA/F16C on a CPU that has more (AVX-512): llama.cpp built
# with GGML_NATIVE=OFF, GGML_AVX2=ON, GGML_AVX512=OFF (into build-avx2/), qwenkit run with
# QWENKIT_ISA=avx2 — how an AVX2-only CPU compares, measured on this one.
#
# Time to first token (-f: prompt length, 0 to skip): one prompt of that many tokens processed
# from an empty cache, logits of its last position included (both engines compute the output
# head for the last token of a prompt batch), 5 repetitions: 1000 * f / (prompt tokens/s) ms.
#
# LLAMACPP_DIR=/path/to/third_party/llamacpp reuses a llama.cpp built by this script elsewhere
# (another checkout) instead of building it again here.
# -k: rounds of A B per thread count. Builds llama.cpp once into third_party/ (git-ignored)
# from the llama-cpp-python source distribution on PyPI (vendor/llama.cpp), native CPU flags
# minus AMX (AMX traps on these machines), and installs cmake from PyPI into a venv there if
# the machine has none.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODEL="${HOME}/.cache/qwenkit/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
THREADS="1 2"; REPS=3; PP=512; TG=128; ROUNDS=2; BUILD_ONLY=0; FIRST=30
ISA=native
while getopts "m:t:r:p:n:k:f:i:b" opt; do
  case $opt in
    i) ISA=$OPTARG; [[ $ISA == native || $ISA == avx2 ]] || { echo "-i: native or avx2" >&2; exit 2; } ;;
    m) MODEL=$OPTARG ;; t) THREADS=$OPTARG ;; r) REPS=$OPTARG ;; p) PP=$OPTARG ;; n) TG=$OPTARG ;;
    k) ROUNDS=$OPTARG ;; f) FIRST=$OPTARG ;; b) BUILD_ONLY=1 ;; *) exit 2 ;;
  esac
done

TP=${LLAMACPP_DIR:-$ROOT/third_party/llamacpp}
BUILD=$TP/build; CPUFLAGS=(-DGGML_NATIVE=ON)
if [[ $ISA == avx2 ]]; then
  BUILD=$TP/build-avx2
  CPUFLAGS=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
            -DGGML_AVX512=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF)
  export QWENKIT_ISA=avx2
fi
BENCH=$BUILD/bin/llama-bench
if [[ ! -x $BENCH ]]; then
  mkdir -p "$TP"
  # A venv with cmake and the sdist's build backend (so pip can read the sdist's metadata
  # without building its build dependencies from source).
  [[ -x $TP/venv/bin/cmake && -d $TP/venv/lib/python3*/site-packages/scikit_build_core ]] ||
    { python3 -m venv "$TP/venv" && "$TP/venv/bin/pip" install -q cmake scikit-build-core; }
  export PATH=$TP/venv/bin:$PATH
  if [[ ! -d $TP/src ]]; then
    (cd "$TP" && "$TP/venv/bin/pip" download -q --no-binary :all: --no-deps --no-build-isolation -d sdist llama-cpp-python)
    mkdir -p "$TP/src"
    tar -xzf "$TP"/sdist/llama_cpp_python-*.tar.gz -C "$TP/src" --strip-components=1
  fi
  NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  cmake -S "$TP/src/vendor/llama.cpp" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "${CPUFLAGS[@]}" \
    -DCMAKE_C_FLAGS="$NOAMX" -DCMAKE_CXX_FLAGS="$NOAMX" -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >"$TP/cmake.log" 2>&1
  cmake --build "$BUILD" --target llama-bench -j2 >"$TP/build.log" 2>&1
fi
[[ $BUILD_ONLY == 1 ]] && { echo "built $BENCH"; exit 0; }

# QWENKIT_BIN=path uses an already built qwenkit (e.g. one built with --build-tests) as is.
if [[ -n ${QWENKIT_BIN:-} ]]; then QK=$QWENKIT_BIN; else
  swift build -c release --product qwenkit >/dev/null
  QK=$ROOT/.build/release/qwenkit
fi

# llama-bench JSON -> "pp_tps pp_sd tg_tps tg_sd"; peak RSS via /usr/bin/time when present.
llama_run() {
  local t=$1 out
  out=$("$BENCH" -m "$MODEL" -p "$PP" -n "$TG" -t "$t" -r "$REPS" -o json 2>/dev/null)
  python3 -c '
import json,sys
rows=json.loads(sys.stdin.read()); pp=tg=(0,0)
for r in rows:
    v=(r["avg_ts"],r["stddev_ts"])
    if r["n_prompt"]>0 and r["n_gen"]==0: pp=v
    if r["n_gen"]>0 and r["n_prompt"]==0: tg=v
print("%.2f %.2f %.2f %.2f"%(pp+tg))' <<<"$out"
}
qwen_run() {
  local t=$1
  "$QK" bench -m "$MODEL" -p "$PP" -n "$TG" -t "$t" -r "$REPS" --json | python3 -c '
import json,sys
j=json.load(sys.stdin)
print("%.2f %.2f %.2f %.2f %d %.0f"%(j["pp"]["tokens_per_second"],j["pp"]["sd"],j["tg"]["tokens_per_second"],j["tg"]["sd"],j["peak_rss_bytes"],j["load_ms"]))'
}
# Time to first token in ms for a prompt of $FIRST tokens: "llama qwenkit".
first_token() {
  local t=$1 l q
  l=$("$BENCH" -m "$MODEL" -p "$FIRST" -n 0 -t "$t" -r 5 -o json 2>/dev/null |
      python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print("%.1f"%(1000*r["n_prompt"]/r["avg_ts"]))')
  q=$("$QK" bench -m "$MODEL" -p "$FIRST" -n 0 -t "$t" -r 5 --json |
      python3 -c 'import json,sys; j=json.load(sys.stdin)["pp"]; print("%.1f"%(1000*j["tokens"]/j["tokens_per_second"]))')
  echo "$l $q"
}
# Peak RSS and load time of llama.cpp for one PP run (GNU time when installed).
llama_rss() {
  local t=$1
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f "%M" "$BENCH" -m "$MODEL" -p "$PP" -n 0 -t "$t" -r 1 -o json 2>&1 >/dev/null | tail -1
  else echo 0; fi
}

printf "model: %s\ninstruction sets: %s\npp=%s tg=%s reps=%s rounds=%s\n\n" "$MODEL" "$ISA" "$PP" "$TG" "$REPS" "$ROUNDS"
printf "%-8s %-3s %-8s %18s %18s %12s %9s\n" threads run engine "pp t/s (sd)" "tg t/s (sd)" "peak RSS MB" "load ms"
for t in $THREADS; do
  lp=(); lt=(); qp=(); qt=()
  for ((k = 1; k <= ROUNDS; k++)); do
    read -r a b c d <<<"$(llama_run "$t")"
    printf "%-8s %-3s %-8s %10s (%5s) %10s (%5s)\n" "$t" "$k" llama.cpp "$a" "$b" "$c" "$d"
    lp+=("$a"); lt+=("$c")
    read -r a b c d rss load <<<"$(qwen_run "$t")"
    printf "%-8s %-3s %-8s %10s (%5s) %10s (%5s) %12.0f %9s\n" "$t" "$k" qwenkit "$a" "$b" "$c" "$d" "$((rss / 1000000))" "$load"
    qp+=("$a"); qt+=("$c")
  done
  lrss=$(llama_rss "$t")
  if [[ $FIRST -gt 0 ]]; then
    read -r a b <<<"$(first_token "$t")"
    python3 -c 'import sys; t,f,a,b=sys.argv[1:]; print(f"threads {t}: time to first token ({f}-token prompt): llama.cpp {a} ms, qwenkit {b} ms, ratio {float(a)/float(b):.2f}x (llama.cpp / qwenkit)")' "$t" "$FIRST" "$a" "$b"
  fi
  python3 - "$t" "${lp[*]}" "${lt[*]}" "${qp[*]}" "${qt[*]}" "$lrss" <<'PY'
import sys, statistics as s
t, lp, lt, qp, qt, lrss = sys.argv[1:]
f = lambda x: [float(v) for v in x.split()]
lp, lt, qp, qt = map(f, (lp, lt, qp, qt))
print(f"threads {t}: PP{''} qwenkit/llama.cpp = {s.mean(qp)/s.mean(lp):.2f}x "
      f"({s.mean(qp):.1f} vs {s.mean(lp):.1f}), TG = {s.mean(qt)/s.mean(lt):.2f}x "
      f"({s.mean(qt):.1f} vs {s.mean(lt):.1f}); llama-bench peak RSS {int(lrss)/1000:.0f} MB\n")
PY
done
