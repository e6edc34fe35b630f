#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/, one after another, and prints a
# summary line per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 600); TARGETs default to all four:
# event_line record_decode query_line append_verify. Each runs as one
# libFuzzer process (no -jobs/-workers: this is meant for a 2-core machine
# that does other work) on its corpus fuzz/corpus/TARGET (grown, not
# committed), the committed seeds fuzz/seeds/TARGET and the dictionary
# fuzz/dict/json.dict, with -rss_limit_mb=2048 -timeout=10. Built with
# debug assertions (so overflow checks) and AddressSanitizer, cargo-fuzz's
# default. Findings land in fuzz/artifacts/TARGET/; reproduce one with
#   cargo +nightly fuzz run -a TARGET fuzz/artifacts/TARGET/crash-…
# Logs: fuzz/logs/TARGET.log (not committed). Exit 1 when any target found
# something.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(event_line record_decode query_line append_verify)
case $seconds in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz needs a nightly compiler (sanitizer flags): the nightly
# toolchain when rustup has one, else the default one with RUSTC_BOOTSTRAP.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

mkdir -p fuzz/logs
"${fuzz[@]}" build -a # every target, once, before the clock starts
found_any=0
summary=()
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    before=$(ls "fuzz/artifacts/$target" | wc -l)
    log="fuzz/logs/$target.log"
    status=0
    "${fuzz[@]}" run -a "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -dict=fuzz/dict/json.dict -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    after=$(ls "fuzz/artifacts/$target" | wc -l)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*cov: \([0-9]*\).*/\1/p' "$log" | tail -1)
    if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
        found_any=1
        what="FOUND something (exit $status; $((after - before)) new artifact(s) in fuzz/artifacts/$target; see $log)"
    else
        what="nothing found"
    fi
    line="$target: ${seconds}s, ${runs:-?} runs, ${rate:-?} execs/s, coverage ${cov:-?} edges, $what"
    echo "$line"
    summary+=("$line")
done
echo "--- summary"
printf '%s\n' "${summary[@]}"
exit "$found_any"
