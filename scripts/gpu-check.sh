#!/usr/bin/env bash
# One-shot GPU check (issue 11 item 4), for a lent GPU machine with a fixed time budget:
# builds reconad with a GPU backend, trains the GPU default (whole images at 256 px, default
# preset, 100 epochs) on one category to the end, evaluates its test set, and prints the wall
# times and images/s as `GPU …` lines. Everything it writes goes under $OUT (default ./gpu-out).
#
#   scripts/gpu-check.sh [cuda|wgpu] [CATEGORY_DIR]
#
# CATEGORY_DIR defaults to ../shared/data/mvtec_ad/bottle. The `cuda` build downloads LLVM
# (needs the network); `wgpu` builds offline.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND="${1:-cuda}"
CATEGORY="${2:-$PWD/../shared/data/mvtec_ad/bottle}"
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reconad-target}"

t0=$(date +%s)
cargo build --release --features "$BACKEND" --bin reconad 2>&1 | tail -3
BIN="$CARGO_TARGET_DIR/release/reconad"
t1=$(date +%s)
echo "GPU build_s=$((t1 - t0)) backend=$BACKEND"
"$BIN" info --backend "$BACKEND" | tee "$OUT/info.txt"

RUN="$OUT/run-$(basename "$CATEGORY")"
t2=$(date +%s)
"$BIN" train --data "$CATEGORY" --out "$RUN" --backend "$BACKEND" --force --quiet 2>&1 | tee "$OUT/train.log"
t3=$(date +%s)
echo "GPU train_s=$((t3 - t2)) category=$(basename "$CATEGORY") (GPU default: whole 256 px, default preset, 100 epochs)"

"$BIN" eval --model "$RUN" --out "$OUT/eval" --backend "$BACKEND" --quiet --force "$CATEGORY" | tee "$OUT/eval.txt"
python3 - "$OUT/eval/metrics.json" <<'PY' || true
import json, sys
m = json.load(open(sys.argv[1]))
print(f"GPU eval images_per_s={m['images_per_second']:.2f} seconds={m['seconds']:.1f} "
      f"image_auroc={m['image_auroc']} pixel_auroc={m['pixel_auroc']}")
PY
echo "GPU total_s=$(( $(date +%s) - t0 ))"
