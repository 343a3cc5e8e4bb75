#!/usr/bin/env bash
# Fuzzes MLPKit's file readers with libFuzzer: the safetensors checkpoint reader, .npy, CSV (with
# and without a header), IDX and archives (gzip and zip/.npz), each for SECONDS (default 30), one
# after another.
#
#   Scripts/fuzz.sh                 # 30 s per reader (about 2 minutes, plus the build)
#   Scripts/fuzz.sh 25 csv numpy    # 25 s each, only these readers
#   FUZZ_RUNS=10000000 Scripts/fuzz.sh 0 idx   # a fixed number of executions instead of a time
#
# Readers: checkpoint numpy csv idx archive. The targets live in Fuzz/ (a package of their own), built
# with -sanitize=fuzzer,address into .build-fuzz. Each run starts from the committed seeds in
# Fuzz/Corpus/READER, the inputs that once failed (Fuzz/Regressions/READER) and the corpus it grew
# before (.build-fuzz/corpus/READER, the only folder libFuzzer writes to), refuses any single
# allocation over FUZZ_MALLOC_MB (default 1 MiB: inputs are at most a few KiB, so a reader that
# allocates more believed a header it should have checked against the file's size; 32 MiB for
# archives, whose 2 KiB inputs may rightly decompress to 2 MiB of data), and treats an
# input that runs over 5 s as a hang. Crashing inputs go to .build-fuzz/artifacts/READER/; replay
# one with `.build-fuzz/release/FuzzREADER FILE`. Exits non-zero when any reader failed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
shift || true
readers=("$@")
[ ${#readers[@]} -gt 0 ] || readers=(checkpoint numpy csv idx archive)
malloc_mb=${FUZZ_MALLOC_MB:-1}
scratch=.build-fuzz

# SwiftPM does not notice source files added to a path dependency since the last build: touching
# the manifest makes it plan the build afresh.
touch Fuzz/Package.swift
swift build -c release --package-path Fuzz --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address

failed=()
for reader in "${readers[@]}"; do
    case $reader in
        checkpoint) target=FuzzCheckpoint max_len=4096 ;;
        numpy) target=FuzzNumpy max_len=1024 ;;
        csv) target=FuzzCSV max_len=4096 ;;
        idx) target=FuzzIDX max_len=512 ;;
        archive) target=FuzzArchive max_len=2048 ;;
        *) echo "unknown reader $reader (checkpoint, numpy, csv, idx, archive)" >&2; exit 64 ;;
    esac
    reader_malloc_mb=$malloc_mb
    [ "$reader" = archive ] && [ -z "${FUZZ_MALLOC_MB:-}" ] && reader_malloc_mb=32
    corpus=$scratch/corpus/$reader
    artifacts=$scratch/artifacts/$reader
    mkdir -p "$corpus" "$artifacts"
    if [ -n "${FUZZ_RUNS:-}" ]; then
        length=(-runs="$FUZZ_RUNS")
        echo "== fuzzing $reader ($FUZZ_RUNS executions)"
    else
        length=(-max_total_time="$seconds")
        echo "== fuzzing $reader ($seconds s)"
    fi
    inputs=("$corpus" "Fuzz/Corpus/$reader")
    [ -d "Fuzz/Regressions/$reader" ] && inputs+=("Fuzz/Regressions/$reader")
    start=$(date +%s)
    status=0
    "$scratch/release/$target" "${length[@]}" -max_len=$max_len -timeout=5 -rss_limit_mb=2048 \
        -malloc_limit_mb="$reader_malloc_mb" -dict="Fuzz/Dictionaries/$reader.dict" -artifact_prefix="$artifacts/" \
        -print_final_stats=1 "${inputs[@]}" >"$scratch/fuzz-$reader.log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/fuzz-$reader.log" | tail -1)
    echo "   $reader: ${runs:-?} executions in $(( $(date +%s) - start )) s, exit status $status"
    if [ $status -ne 0 ]; then
        grep -E "ERROR|SUMMARY|fuzz invariant|Fatal error|Test unit written" "$scratch/fuzz-$reader.log" | head -20 >&2 || true
        failed+=("$reader")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing failed for: ${failed[*]} (logs in $scratch/fuzz-READER.log)" >&2
    exit 1
fi
echo "fuzzing found nothing"
