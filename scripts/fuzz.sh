#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ and runs each: first its saved crash inputs
# (Fuzz/Regressions/<target>/) and its seed corpus (Fuzz/Corpus/<target>/), once each, then
# coverage-guided fuzzing for a bounded time from a temporary copy of the corpus (the
# repository is never written). Exits non-zero if any input crashes, breaks a property, times
# out or runs out of memory; the input is printed (path and base64) and kept under the
# artifacts directory.
#
#   scripts/fuzz.sh [--seconds N] [target…]      N seconds of fuzzing per target (default 30)
#   scripts/fuzz.sh --seconds 0                  only replay the regressions and the corpus
#   scripts/fuzz.sh --list                       the targets
#
# Environment: FUZZ_SCRATCH (build directory, default .build-fuzz), FUZZ_ARTIFACTS (where
# failing inputs are copied, default $FUZZ_SCRATCH/artifacts), FUZZ_FLAGS (more libFuzzer flags).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# target name -> executable, maximum input length
declare -A executables=(
    [json]=FuzzJSON [tokens]=FuzzTokens [cookie]=FuzzCookie [bearer]=FuzzBearer
    [upstream-path]=FuzzUpstreamPath [upstreams-file]=FuzzUpstreamsFile [if-match]=FuzzIfMatch
)
declare -A max_lengths=(
    [json]=4096 [tokens]=128 [cookie]=512 [bearer]=256 [upstream-path]=512 [upstreams-file]=4096 [if-match]=64
)
all_targets=(json tokens cookie bearer if-match upstream-path upstreams-file)

seconds=30
targets=()
while (($#)); do
    case "$1" in
        --seconds)
            seconds=${2:?--seconds needs a number}
            shift 2
            ;;
        --seconds=*)
            seconds=${1#--seconds=}
            shift
            ;;
        --list)
            printf '%s\n' "${all_targets[@]}"
            exit 0
            ;;
        -h | --help)
            sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "fuzz.sh: unknown option $1" >&2
            exit 2
            ;;
        *)
            [[ -n "${executables[$1]:-}" ]] || {
                echo "fuzz.sh: unknown target $1 (known: ${all_targets[*]})" >&2
                exit 2
            }
            targets+=("$1")
            shift
            ;;
    esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] || {
    echo "fuzz.sh: --seconds needs a whole number, not $seconds" >&2
    exit 2
}
((${#targets[@]})) || targets=("${all_targets[@]}")

scratch=${FUZZ_SCRATCH:-$root/.build-fuzz}
artifacts=${FUZZ_ARTIFACTS:-$scratch/artifacts}
# A crash must not hang in the Swift runtime's backtracer: libFuzzer reports it.
export SWIFT_BACKTRACE=enable=no

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# libFuzzer without its main (a SwiftPM executable's main is renamed; the targets call
# LLVMFuzzerRunDriver themselves), from the toolchain's clang resource directory.
arch=$(uname -m)
swift_resources=$(swiftc -print-target-info | sed -n 's/.*"runtimeResourcePath": *"\([^"]*\)".*/\1/p' | head -1)
fuzzer_lib=""
for candidate in "$swift_resources"/../clang/*/lib/linux/libclang_rt.fuzzer_no_main-"$arch".a \
    "$swift_resources"/clang/lib/linux/libclang_rt.fuzzer_no_main-"$arch".a; do
    [[ -f "$candidate" ]] && fuzzer_lib=$candidate
done
[[ -n "$fuzzer_lib" ]] || {
    echo "fuzz.sh: libclang_rt.fuzzer_no_main-$arch.a not found under $swift_resources/../clang" >&2
    exit 1
}

echo "== build (Fuzz/, $scratch)"
start=$(now)
build=(swift build -c release --package-path Fuzz --scratch-path "$scratch"
    -Xswiftc -sanitize=address
    -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp
    -Xlinker "$fuzzer_lib" -Xlinker -lstdc++)
mkdir -p "$scratch"
if ! "${build[@]}" >"$scratch/fuzz-build.log" 2>&1; then
    cat "$scratch/fuzz-build.log"
    echo "fuzz.sh: the build failed" >&2
    exit 1
fi
bin=$("${build[@]}" --show-bin-path 2>/dev/null)
echo "   built in $(elapsed "$start")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()

# Prints what failed, from a libFuzzer log: the property, or the error and the top of its stack.
show_failure() {
    if grep -q 'PROPERTY FAILED' "$1"; then
        grep -E 'PROPERTY FAILED|SUMMARY' "$1"
    else
        grep -E 'runtime failure|Fatal error|ERROR: |ALARM|SUMMARY|^ +#([0-9]|1[0-9]) ' "$1" | head -30
    fi | cut -c1-2000 | sed 's/^/   /'
}

# Prints a failing input and keeps a copy: `report target file what`.
report() {
    local target=$1 file=$2 what=$3 kept
    mkdir -p "$artifacts/$target"
    kept="$artifacts/$target/$(basename "$file")"
    [[ "$file" -ef "$kept" ]] || cp "$file" "$kept"
    echo "!! $target: $what"
    echo "!! input: $file ($(wc -c <"$file") bytes), kept as $kept"
    echo "!! base64: $(base64 -w0 "$file")"
    echo "!! reproduce: SWIFT_BACKTRACE=enable=no $bin/${executables[$target]} $kept"
    [[ "$file" == Fuzz/* ]] || echo "!! once fixed, keep it as a regression: cp $kept Fuzz/Regressions/$target/"
    [[ " ${failed[*]} " == *" $target "* ]] || failed+=("$target")
}

for target in "${targets[@]}"; do
    exe="$bin/${executables[$target]}"
    flags=(-timeout=5 -rss_limit_mb=2048 -max_len="${max_lengths[$target]}")
    [[ -f "Fuzz/Dictionaries/$target.dict" ]] && flags+=(-dict="Fuzz/Dictionaries/$target.dict")
    # shellcheck disable=SC2206
    flags+=(${FUZZ_FLAGS:-})

    # 1. The saved crash inputs and the seeds, each run once.
    start=$(now)
    mapfile -t inputs < <(find "Fuzz/Regressions/$target" "Fuzz/Corpus/$target" -type f ! -name '.*' 2>/dev/null | sort)
    echo "== $target: replay ${#inputs[@]} inputs (Fuzz/Regressions/$target, Fuzz/Corpus/$target)"
    replay_failed=0
    if ((${#inputs[@]})) && ! "$exe" "${flags[@]}" "${inputs[@]}" >"$work/$target.replay.log" 2>&1; then
        # Find which inputs fail, one at a time.
        for input in "${inputs[@]}"; do
            if ! "$exe" "${flags[@]}" "$input" >"$work/$target.one.log" 2>&1; then
                show_failure "$work/$target.one.log"
                report "$target" "$input" "a saved input fails"
            fi
        done
        replay_failed=1
    fi
    echo "   replayed in $(elapsed "$start")"
    ((replay_failed)) && continue
    ((seconds > 0)) || continue

    # 2. Fuzzing, from a copy of the corpus.
    start=$(now)
    corpus="$work/$target.corpus"
    mkdir -p "$corpus" "$work/$target.artifacts"
    cp Fuzz/Corpus/"$target"/* "$corpus"/ 2>/dev/null || true
    echo "== $target: fuzz for $seconds s"
    if "$exe" "${flags[@]}" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$work/$target.artifacts/" "$corpus" >"$work/$target.fuzz.log" 2>&1; then
        grep -E '^Done |stat::number_of_executed_units|stat::new_units_added' "$work/$target.fuzz.log" | sed 's/^/   /'
        echo "   corpus: $(find "$corpus" -type f | wc -l) inputs; fuzzed in $(elapsed "$start")"
    else
        # What failed, and where: the property or runtime error and the top of the stack.
        show_failure "$work/$target.fuzz.log"
        found=0
        for artifact in "$work/$target.artifacts"/*; do
            [[ -f "$artifact" ]] || continue
            report "$target" "$artifact" "fuzzing found a failing input ($(basename "$artifact" | cut -d- -f1))"
            found=1
        done
        ((found)) || {
            echo "!! $target: the fuzzer failed without an input (see above)"
            failed+=("$target")
        }
        echo "   fuzzed in $(elapsed "$start")"
    fi
done

if ((${#failed[@]})); then
    echo "fuzz.sh: FAILED: ${failed[*]} (inputs under $artifacts)"
    exit 1
fi
echo "fuzz.sh: no failures (${targets[*]})"
