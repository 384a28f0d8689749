#!/usr/bin/env bash
# Tokenizer speed on pathological text (issue 13): MB/s for 1, 10 and 100 MB of each class,
# through the release binary (`qwenkit tokenize --count`, text on standard input). Linear time
# shows as the same MB/s at every size. MB/s is computed from the process's CPU time (it runs on
# one thread) less that of loading the model, and also, in brackets, from wall time.
#
#   benchmarks/tokenizer-pathological.sh [-m MODEL] [-s "1 10 100"] [-c "marks jamo ..."]
#
# -m: a model whose tokenizer to use (default: the tiny Qwen2.5-vocabulary model of the shared
#     fixtures; models/tiny-qwen35 gives the Qwen3.5 tokenizer). Loading it is timed on an
#     empty input (the least of three runs) and subtracted.
# Classes: marks  one letter and then only combining marks in non-canonical order
#                 (U+0301 U+0316 U+0327 U+0334 U+0345 U+031B U+0323 U+0300, repeated)
#          jamo   conjoining jamo L V T / L V, to compose into syllables
#          letter one letter repeated (a single huge pre-token)
#          digits decimal digits (one pre-token each)
#          spaces spaces, then one letter (a single huge whitespace pre-token)
#          emoji  ZWJ sequences (family, rainbow flag)
#          cjk    CJK ideographs in pseudo-random order
# Needs: bash, awk, perl, a release build (swift build -c release --product qwenkit). Peak memory comes
# from GNU time where /usr/bin/time is GNU time; otherwise it is shown as "-".
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build/release/qwenkit
FIXTURES=${QWENKIT_FIXTURES:-../shared/fixtures}
MODEL=$FIXTURES/models/tiny-qwen2
SIZES="1 10 100"
CLASSES="marks jamo letter digits spaces emoji cjk"
while getopts "m:s:c:" opt; do
  case $opt in
    m) MODEL=$OPTARG ;; s) SIZES=$OPTARG ;; c) CLASSES=$OPTARG ;;
    *) echo "usage: $0 [-m MODEL] [-s SIZES_MB] [-c CLASSES]" >&2; exit 2 ;;
  esac
done
[ -x "$BIN" ] || { echo "no $BIN: run swift build -c release --product qwenkit first" >&2; exit 1; }
[ -e "$MODEL" ] || { echo "no model at $MODEL: pass -m MODEL or set QWENKIT_FIXTURES" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tokenizer-pathological.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# One UTF-8 character from a code point, as printf octal escapes.
utf8() {
  local c=$1
  if [ "$c" -lt 128 ]; then printf '\\%03o' "$c"
  elif [ "$c" -lt 2048 ]; then printf '\\%03o\\%03o' $((0xC0 | c >> 6)) $((0x80 | (c & 63)))
  elif [ "$c" -lt 65536 ]; then printf '\\%03o\\%03o\\%03o' $((0xE0 | c >> 12)) $((0x80 | (c >> 6 & 63))) $((0x80 | (c & 63)))
  else printf '\\%03o\\%03o\\%03o\\%03o' $((0xF0 | c >> 18)) $((0x80 | (c >> 12 & 63))) $((0x80 | (c >> 6 & 63))) $((0x80 | (c & 63)))
  fi
}

# A block of about 4 kB of the class (without its one-time prefix/suffix), to be repeated.
block() {
  local out="" i seed=12345
  next() { seed=$(( (seed * 1103515245 + 12345) % 2147483648 )); }
  case $1 in
    marks) for c in 769 790 807 820 837 795 803 768; do out+=$(utf8 "$c"); done
           printf "$out%.0s" $(seq 256) ;;
    jamo) for i in $(seq 500); do
            next; out+=$(utf8 $((0x1100 + seed % 19))); next; out+=$(utf8 $((0x1161 + seed % 21)))
            next; [ $((seed % 2)) -eq 0 ] && out+=$(utf8 $((0x11A8 + seed % 27)))
          done; printf "$out" ;;
    letter) printf 'a%.0s' $(seq 4096) ;;
    digits) for i in $(seq 4096); do next; out+=$((seed % 10)); done; printf '%s' "$out" ;;
    spaces) printf ' %.0s' $(seq 4096) ;;
    emoji) out=$(utf8 128104)$(utf8 8205)$(utf8 128105)$(utf8 8205)$(utf8 128103)$(utf8 8205)$(utf8 128102)
           out+=$(utf8 127987)$(utf8 65039)$(utf8 8205)$(utf8 127752)
           printf "$out%.0s" $(seq 100) ;;
    cjk) for i in $(seq 1365); do next; out+=$(utf8 $((0x4E00 + seed % 20992))); done; printf "$out" ;;
    *) echo "unknown class $1" >&2; exit 2 ;;
  esac
}

# FILE of about MB megabytes of CLASS: prefix, the block repeated, suffix.
generate() {
  local class=$1 mb=$2 file=$3
  block "$class" > "$WORK/block"
  # Double the block up to 1 MB, then repeat that.
  while [ "$(wc -c < "$WORK/block")" -lt 1000000 ]; do cat "$WORK/block" "$WORK/block" > "$WORK/b2"; mv "$WORK/b2" "$WORK/block"; done
  head -c 1000000 "$WORK/block" > "$WORK/unit"
  if [ "$class" != letter ] && [ "$class" != digits ] && [ "$class" != spaces ]; then
    # Cut at a character boundary: drop trailing continuation bytes and a partial lead.
    LC_ALL=C perl -0777 -pe 's/[\xC0-\xFF][\x80-\xBF]*\z//' "$WORK/unit" > "$WORK/u2"; mv "$WORK/u2" "$WORK/unit"
  fi
  { [ "$class" = marks ] && printf 'a'
    for _ in $(seq "$mb"); do cat "$WORK/unit"; done
    [ "$class" = spaces ] && printf 'x'
    true; } > "$file"
}

if /usr/bin/time -f %M true > /dev/null 2>&1; then GNU_TIME=1; else GNU_TIME=0; fi

# "wall user+sys peakKB" to tokenize FILE (peak "-" without GNU time).
measure() {
  local file=$1 times
  local wrap=()
  [ "$GNU_TIME" = 1 ] && wrap=(/usr/bin/time -f %M -o "$WORK/rss")
  echo - > "$WORK/rss"
  TIMEFORMAT='%R %U %S'
  times=$( { time "${wrap[@]}" "$BIN" tokenize -m "$MODEL" --count < "$file" > "$WORK/count" 2> "$WORK/err"; } 2>&1 ) || {
    echo "qwenkit failed on $file:" >&2; cat "$WORK/err" >&2; exit 1; }
  echo "$times $(cat "$WORK/rss")" | awk '{ print $1, $2 + $3, $4 }'
}

# The load: the least CPU time of three runs on an empty input.
: > "$WORK/empty"
LOAD_WALL=; LOAD_CPU=
for _ in 1 2 3; do
  read -r wall cpu _ < <(measure "$WORK/empty")
  LOAD_WALL=$(awk -v a="$wall" -v b="${LOAD_WALL:-1e9}" 'BEGIN { print (a < b ? a : b) }')
  LOAD_CPU=$(awk -v a="$cpu" -v b="${LOAD_CPU:-1e9}" 'BEGIN { print (a < b ? a : b) }')
done
echo "binary: $BIN ($(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "model: $MODEL (load, empty input: ${LOAD_CPU} s CPU, ${LOAD_WALL} s wall; subtracted)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //' || echo '?'), $(getconf _NPROCESSORS_ONLN) cores, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
echo
echo "MB/s from CPU time (user + sys, one thread; steadier than wall time on a shared machine);"
echo "in brackets from wall time."
echo
header="| class |"; rule="|---|"
for mb in $SIZES; do header+=" $mb MB |"; rule+="---:|"; done
echo "$header peak RSS at ${mb} MB | ids at ${mb} MB |"
echo "$rule---:|---:|"
for class in $CLASSES; do
  row="| $class |"
  for mb in $SIZES; do
    generate "$class" "$mb" "$WORK/input"
    bytes=$(wc -c < "$WORK/input")
    read -r wall cpu rss < <(measure "$WORK/input")
    row+=$(awk -v w="$wall" -v c="$cpu" -v lw="$LOAD_WALL" -v lc="$LOAD_CPU" -v b="$bytes" \
      'BEGIN { nc = c - lc; nw = w - lw; if (nc < 0.01) nc = 0.01; if (nw < 0.01) nw = 0.01
               printf " %.1f (%.1f) |", b / 1e6 / nc, b / 1e6 / nw }')
    last_rss=$rss
  done
  if [ "$last_rss" = - ]; then rss_text=-; else rss_text="$((last_rss / 1024)) MB"; fi
  echo "$row $rss_text | $(cat "$WORK/count") |"
done
