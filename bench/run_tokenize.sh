#!/usr/bin/env bash
# lmkit's byte-level BPE beside the real tiktoken (npm tiktoken, the WASM build of OpenAI's Rust
# library), one after the other in the same sitting, on the same files: single-thread MB/s and
# the ratio. Set-up of the peer: ../shared/peers/README.md.
#
#   bench/run_tokenize.sh [BUILD_DIR] [PASSES]        (TIKTOKEN_PEER=/tmp/tiktoken-peer by default)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
passes=${2:-5}
peer=${TIKTOKEN_PEER:-/tmp/tiktoken-peer}
data=${LMKIT_SHARED_DATA:-$here/../../shared/data}
bench=$build/bench/bench_tokenize
[ -x "$bench" ] || { echo "build $bench first" >&2; exit 1; }
[ -f "$peer/encode.js" ] || { echo "no tiktoken peer in $peer (see ../shared/peers/README.md)" >&2; exit 1; }
korean=$build/bench/korean_prose.txt
"$bench" --write-korean "$korean"
declare -A file=([shakespeare]="$data/tinyshakespeare/input.txt" [korean]="$korean")
printf '%-12s %-12s %12s %12s %8s %10s\n' encoding text "tiktoken MB/s" "lmkit MB/s" ratio tokens
for enc in gpt2 cl100k_base o200k_base; do
  for text in shakespeare korean; do
    peer_line=$(node "$peer/encode.js" "$enc" "${file[$text]}" --bench "$passes")
    peer_mbs=$(sed -E 's/.*: ([0-9.]+) MB\/s.*/\1/' <<<"$peer_line")
    peer_tokens=$(sed -E 's/.* ([0-9]+) tokens per pass/\1/' <<<"$peer_line")
    json=$("$bench" --benchmark_filter="^encode/$enc/$text\$" --benchmark_min_time=1 --benchmark_format=json 2>/dev/null)
    ours_bps=$(grep -o '"bytes_per_second": [0-9.e+]*' <<<"$json" | head -1 | awk '{print $2}')
    ours_tokens=$(grep -o '"tokens": [0-9.e+]*' <<<"$json" | head -1 | awk '{printf "%d", $2}')
    awk -v e="$enc" -v t="$text" -v p="$peer_mbs" -v o="$ours_bps" -v pt="$peer_tokens" -v ot="$ours_tokens" \
      'BEGIN { printf "%-12s %-12s %12.2f %12.2f %7.2fx %10s%s\n", e, t, p, o / 1e6, o / 1e6 / p, ot, (pt == ot ? "" : "  (tiktoken: " pt ")") }'
  done
done
echo "batch of lines, all threads (lmkit only):"
"$bench" --benchmark_filter='encode_batch' --benchmark_min_time=1 2>/dev/null | grep encode_batch
