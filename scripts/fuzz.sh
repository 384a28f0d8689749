#!/usr/bin/env bash
# Builds the fuzz targets (Sources/qwenkit-fuzz) with libFuzzer and AddressSanitizer into
# .build-fuzz/ (apart from the normal build), then runs each target for a while and replays the
# committed inputs. See docs/SECURITY.md ("Fuzzing").
#
#   scripts/fuzz.sh [--seconds N] [--replay] [--no-build] [TARGET...]
#
#   --seconds N   fuzz each target for N seconds (default 60), after replaying its inputs
#   --replay      only replay Tests/fuzz/crashes/<target> and Tests/fuzz/corpus/<target>
#   --no-build    use the fuzzer binary already built (for several runs side by side)
#   TARGET        gguf safetensors tokenizer jinja chat json schema toolcall (default: all)
#
# Inputs found along the way go to .build-fuzz/corpus/<target>/, crash and timeout inputs to
# .build-fuzz/artifacts/<target>/, logs to .build-fuzz/logs/<target>.log (<target>.replay.log
# when replaying). A crash input that has been fixed belongs in Tests/fuzz/crashes/<target>/,
# which CI replays. Exits non-zero if any target crashed, timed out or ran out of memory.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(gguf safetensors tokenizer jinja chat json schema toolcall)
seconds=60
replay_only=0
build=1
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --replay) replay_only=1; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

# The tokenizer target reads the real Qwen2.5 tokenizer from the shared fixtures.
if [ -z "${QWENKIT_FIXTURES:-}" ]; then
    for candidate in ../shared/fixtures /work/shared/fixtures; do
        if [ -d "$candidate" ]; then QWENKIT_FIXTURES=$(cd "$candidate" && pwd); break; fi
    done
fi
if [ -z "${QWENKIT_FIXTURES:-}" ] || [ ! -d "$QWENKIT_FIXTURES" ]; then
    echo "fuzz.sh: cannot find the reference fixtures; set QWENKIT_FIXTURES to the shared/fixtures folder" >&2
    exit 1
fi
export QWENKIT_FIXTURES

scratch=.build-fuzz
if [ "$build" = 1 ]; then
    start=$SECONDS
    swift build -c release --product qwenkit-fuzz --scratch-path "$scratch" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -DQWENKIT_FUZZ 2>&1 \
        | grep -v "Cannot export local symbol" || true
    echo "fuzz.sh: sanitizer build took $((SECONDS - start)) s"
fi
binary="$scratch/release/qwenkit-fuzz"
[ -x "$binary" ] || { echo "fuzz.sh: $binary was not built" >&2; exit 1; }

# The targets write model files into $TMPDIR; keep them in one folder removed at the end.
work=$(mktemp -d "${TMPDIR:-/tmp}/qwenkit-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Leaks are not what these runs look for (the Swift runtime's caches read as leaks at exit);
# memory that grows per input is caught by -rss_limit_mb.
export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
flags=(-timeout=20 -rss_limit_mb=3072 -print_final_stats=1 -detect_leaks=0)

failed=0
summary=()
for target in "${targets[@]}"; do
    case " ${ALL_TARGETS[*]} " in *" $target "*) ;; *) echo "fuzz.sh: unknown target $target" >&2; exit 2 ;; esac
    seeds="Tests/fuzz/corpus/$target"
    crashes="Tests/fuzz/crashes/$target"
    corpus="$scratch/corpus/$target"
    artifacts="$scratch/artifacts/$target"
    log="$scratch/logs/$target.log"
    [ "$replay_only" = 0 ] || log="$scratch/logs/$target.replay.log"
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    inputs=("$seeds")
    [ -d "$crashes" ] && inputs+=("$crashes")

    status=0
    if [ "$replay_only" = 1 ]; then
        # -runs=0 runs every input of the folders once and stops.
        TMPDIR="$work" QWENKIT_FUZZ_TARGET="$target" "$binary" "${flags[@]}" -runs=0 \
            -artifact_prefix="$artifacts/" "${inputs[@]}" > "$log" 2>&1 || status=$?
    else
        TMPDIR="$work" QWENKIT_FUZZ_TARGET="$target" "$binary" "${flags[@]}" -max_total_time="$seconds" \
            -artifact_prefix="$artifacts/" "$corpus" "${inputs[@]}" > "$log" 2>&1 || status=$?
    fi

    runs=$(grep -a -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    cov=$(grep -a -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    ft=$(grep -a -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    crashes_found=$(grep -a -c -E 'ERROR: (AddressSanitizer|libFuzzer: (deadly signal|out-of-memory|fuzz target exited))' "$log" || true)
    timeouts=$(grep -a -c 'ERROR: libFuzzer: timeout' "$log" || true)
    line=$(printf '%-12s executions %-10s cov %-6s ft %-7s crashes %s  timeouts %s' \
        "$target" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$crashes_found" "$timeouts")
    if [ "$status" != 0 ] || [ "$crashes_found" != 0 ] || [ "$timeouts" != 0 ]; then
        failed=1
        line="$line  FAILED (exit $status; see $log and $artifacts/)"
        grep -a -m1 -E 'ERROR: |Fatal error|SUMMARY' "$log" >&2 || tail -20 "$log" >&2
    fi
    echo "fuzz.sh: $line"
    summary+=("$line")
done

echo "fuzz.sh: summary ($([ "$replay_only" = 1 ] && echo replay || echo "$seconds s each"))"
printf '  %s\n' "${summary[@]}"
exit $failed
