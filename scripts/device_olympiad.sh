#!/usr/bin/env bash
# The real-engine loop of the tiny olympiad model, on the lent GPU machine (docs/olympiad-loop.md).
# Run from the repo root with $OUT set, after the device preamble (shared/device/README.md):
#   bash scripts/device_olympiad.sh build record      # call 1: train + AWQ + record
#   bash scripts/device_olympiad.sh profile           # call 2: step latency -> profile
#   bash scripts/device_olympiad.sh live              # call 3: live solves, seed and tuned
#   bash scripts/device_olympiad.sh record-logprobs   # issue 17: the record call again, + top-8
#                                                       logprobs (token confidence), bundled model
# Each stage appends to $OUT/device.log; results land in $OUT (at most 8 files come back).
set -uo pipefail
MODEL=${MODEL:-data/models/olympiad-tiny-awq}
PROBLEMS=data/problems/olympiad-50.csv
STORE=/tmp/olympiad-record.duckdb
LIVE=/tmp/olympiad-live.duckdb
STORE_LP=/tmp/olympiad-record-logprobs.duckdb
LOGPROBS=${LOGPROBS:-8}
MINUTES=${MINUTES:-4}
TOKENS=${TOKENS:-1536}
log="$OUT/device.log"
say() { echo "== $(date +%H:%M:%S) $*" | tee -a "$log"; }
compact() { python3 -m aimo.core.store.compact "$1" "$2"; }  # 16 KiB blocks: small stores shrink 10-30x
DEADLINE=${DEADLINE:-$(( $(date +%s) + 570 ))}  # epoch s: stages that can stop early stop by it
left() { echo $(( DEADLINE - $(date +%s) - ${1:-0} )); }
run() { say "$*"; "$@" 2>&1 | tee -a "$log" | grep -v '^\s*$' | tail -n 40; return "${PIPESTATUS[0]}"; }

for stage in "$@"; do
  case "$stage" in
    build)
      run python3 -m aimo.recorder.olympiad.build --out "$MODEL" --minutes "$MINUTES" || exit 1
      tar -cf "$OUT/model.tar" -C "$(dirname "$MODEL")" "$(basename "$MODEL")"
      ;;
    record)
      run timeout "$(left 25)" python3 -m aimo.cli record --problems "$PROBLEMS" --model "$MODEL" --backend pytorch \
        --samples 16 --prompts cot:8,code:8 --max-new-tokens "$TOKENS" --quant-policy 8 \
        --max-batch 16 --logprobs 0 --out "$STORE" --run-id olympiad-tiny-w4kv8  # resumable
      compact "$STORE" "$OUT/olympiad-tiny.duckdb"
      ;;
    record-logprobs)  # the same problems and settings as `record`, plus top-k logprobs
      run timeout "$(left 25)" python3 -m aimo.cli record --problems "$PROBLEMS" --model "$MODEL" --backend pytorch \
        --samples 16 --prompts cot:8,code:8 --max-new-tokens "$TOKENS" --quant-policy 8 \
        --max-batch 16 --logprobs "$LOGPROBS" --out "$STORE_LP" --run-id olympiad-tiny-w4kv8-logprobs
      compact "$STORE_LP" "$OUT/olympiad-tiny-logprobs.duckdb"
      python3 -m aimo.recorder.calibration "$OUT/olympiad-tiny-logprobs.duckdb" --confidence-only 2>&1 | tee -a "$log"
      ;;
    profile)  # skipped when less than 90 s are left; cells that do not fit are skipped
      if [ "$(left)" -lt 90 ]; then say "profile skipped: $(left) s left"; continue; fi
      run python3 -m aimo.cli profile measure --model "$MODEL" --backend pytorch --quant-policy 8 \
        --grid quick --name h200-olympiad-tiny-w4kv8-measured --until "$(( DEADLINE - 10 ))" \
        --csv "$OUT/olympiad-steps.csv" --out "$OUT/h200-olympiad-tiny-w4kv8-measured.yaml"
      ;;
    live)  # each solve recorded question by question, so a cut run keeps what it finished
      for policy in seed-2nd-place ${TUNED:-data/policies/olympiad-tuned.yaml}; do
        name=$(basename "$policy" .yaml)
        say "solve $name ($(left) s left)"
        timeout "$(left ${RESERVE:-150})" python3 -m aimo.cli solve --problems "$PROBLEMS" \
          --policy "$policy" --model "$MODEL" --backend pytorch --tp 1 --max-new-tokens "$TOKENS" \
          --record "$LIVE" --json > "$OUT/live-$name.json" 2>> "$log"
        say "solve $name exit $?"
      done
      compact "$LIVE" "$OUT/olympiad-live.duckdb"
      ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
say done
