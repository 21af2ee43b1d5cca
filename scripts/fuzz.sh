#!/usr/bin/env bash
# libFuzzer runs of the parsers of untrusted bytes (docs/fuzzing.md). Not part of CI.
#
#   scripts/fuzz.sh --list                      the targets
#   scripts/fuzz.sh TARGET SECONDS [OPTION...]  build TARGET, fuzz it for SECONDS from a copy of its seed corpus
#                                               (fuzz/corpus/TARGET); OPTIONs go to libFuzzer (-jobs=, -dict=, ...)
#   scripts/fuzz.sh --run TARGET FILE...        build TARGET and run it once on each FILE (a crash to reproduce)
#
# The build (fuzz/.build) instruments every Swift module, the main package's included, with
# -sanitize=fuzzer,address; the main package itself keeps no unsafe flags. The committed corpus is never
# written: new inputs go to a working copy under $FUZZ_WORK (default fuzz/.work), crashes to its artifacts/.
# At the end the script prints the executions per second and the final coverage (libFuzzer's cov: and ft:).
# FUZZ_SKIP_BUILD=1 runs the binary already in fuzz/.build (while another build holds that folder).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(onnx-model oip-request npy evidence-bundle snp-report tdx-quote der-certificate crl tdx-collateral)

usage() {
    sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

known() {
    local t
    for t in "${TARGETS[@]}"; do [ "$t" = "$1" ] && return 0; done
    echo "unknown target '$1' (scripts/fuzz.sh --list)" >&2
    exit 2
}

build() {
    if [ -n "${FUZZ_SKIP_BUILD:-}" ]; then
        [ -x "fuzz/.build/release/$1" ] || { echo "FUZZ_SKIP_BUILD is set but fuzz/.build/release/$1 is not built" >&2; exit 1; }
        return
    fi
    local log=fuzz/.build/build-$1.log
    mkdir -p fuzz/.build
    echo "== building $1 (release, -sanitize=fuzzer,address; log: $log)"
    if ! swift build -c release --package-path fuzz --scratch-path fuzz/.build --product "$1" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -enable-testing >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "build of $1 failed (full log: $log)" >&2
        exit 1
    fi
}

# Swift keeps runtime metadata and global caches alive on purpose: LeakSanitizer would report them.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}"

case "${1:-}" in
--list)
    printf '%s\n' "${TARGETS[@]}"
    exit 0
    ;;
--run)
    [ $# -ge 3 ] || usage
    known "$2"
    build "$2"
    target=$2
    shift 2
    exec "fuzz/.build/release/$target" "$@"
    ;;
-h | --help | "")
    usage
    ;;
esac

[ $# -ge 2 ] || usage
target=$1
seconds=$2
shift 2
known "$target"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number, got '$seconds'" >&2; exit 2; }
[ -d "fuzz/corpus/$target" ] || { echo "no seed corpus fuzz/corpus/$target" >&2; exit 1; }
build "$target"

work="${FUZZ_WORK:-fuzz/.work}/$target-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$work/artifacts"
cp -R "fuzz/corpus/$target" "$work/corpus"
echo "== fuzzing $target for $seconds s: seeds $(ls "$work/corpus" | wc -l) files (fuzz/corpus/$target), working corpus $work/corpus"
echo "== crashes, timeouts and out-of-memory inputs go to $work/artifacts/"

status=0
"fuzz/.build/release/$target" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" 2>&1 | tee "$work/fuzz.log" || status=$?

echo "== summary of $target ($work/fuzz.log)"
last=$(grep -E '^#[0-9]+.*cov: ' "$work/fuzz.log" | tail -n 1 || true)
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log" | tail -n 1)
echo "executions: ${runs:-?} (${rate:-?} exec/s)"
echo "final coverage: $(grep -oE 'cov: [0-9]+ ft: [0-9]+' <<<"$last" || echo '?') (corpus $(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$last" || echo '?'))"
crashes=$(ls "$work/artifacts" 2>/dev/null)
if [ -n "$crashes" ]; then
    echo "artifacts (reproduce with scripts/fuzz.sh --run $target FILE):"
    for f in $crashes; do echo "  $work/artifacts/$f"; done
else
    echo "no crash, timeout or out-of-memory input"
fi
exit "$status"
