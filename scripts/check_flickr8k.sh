#!/usr/bin/env bash
# scripts/check_flickr8k.sh BUILD_DIR — end-to-end evaluation check on real data: train the
# Flickr8k recipe briefly (configs/flickr8k.yaml, ~2 min on 2 cores), evaluate retrieval on the
# held-out Flickr8k val split and require text->image R@1 and R@10 to beat chance by a stated
# margin. Exit 77 (skip) without ../shared/data.
#   margin: R@1 >= 4x chance (chance = 1/400 images = 0.25%), R@10 >= 2x chance (2.5%).
#   measured (README): R@1 2.05%, R@10 11.4%.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
DATA="$ROOT/../shared/data"
if [[ ! -f "$DATA/flickr8k/captions_val.tsv" || ! -f "$DATA/flickr8k_text/captions_nontest.txt" ]]; then
  echo "skip: ../shared/data/flickr8k not found (the check needs the shared Flickr8k subset)"
  exit 77
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
SG="$BUILD/sogclip"
"$SG" tokenizer train --input "$DATA/flickr8k_text/captions_nontest.txt" \
  --model-prefix "$WORK/tok" --vocab-size 2000 > tok.log
"$SG" train -c "$ROOT/configs/flickr8k.yaml" run.output_dir="$WORK/runs" \
  tokenizer.model="$WORK/tok.model" data.train="$DATA/flickr8k/captions_train.tsv" > train.log
"$SG" eval retrieval --checkpoint "$WORK/runs/flickr8k/model.safetensors" \
  --tokenizer "$WORK/tok.model" --data "$DATA/flickr8k/captions_val.tsv" \
  --image-key image --caption-key caption --json "$WORK/ret.json"
python3 - "$WORK/ret.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
r1, r10 = 100 * m["image_retrieval_recall@1"], 100 * m["image_retrieval_recall@10"]
chance1, chance10 = 100 / 400, 1000 / 400
print(f"Flickr8k val text->image R@1 {r1:.2f}% (chance {chance1:.2f}%), "
      f"R@10 {r10:.2f}% (chance {chance10:.2f}%)")
ok = r1 >= 4 * chance1 and r10 >= 2 * chance10
print("PASS" if ok else "FAIL: does not beat chance by the stated margin (R@1 4x, R@10 2x)")
sys.exit(0 if ok else 1)
PY
