#!/usr/bin/env bash
# lmkit's training steps beside PyTorch 1.13's (../shared/peers/pytorch/), one after the other in
# the same sitting: ms per step and the ratio, at 1 and 2 threads. Set-up of the peer:
# ../shared/peers/README.md (Debian's python3-torch with libopenblas0-openmp).
#
#   bench/run_train.sh [BUILD_DIR] [gpt2]      (gpt2: also the GPT-2 small AdamW step, ~1 min each)
#
# Then the GPT steps with bf16 products beside PyTorch's fp32 step and its autocast to bfloat16.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
peers=${LMKIT_PEERS:-$here/../../shared/peers}
bench=$build/bench/bench_train
[ -x "$bench" ] || { echo "build $bench first" >&2; exit 1; }
# OPENBLAS_NUM_THREADS: torch.set_num_threads (PEER_THREADS) sets OpenMP's threads, but when
# Debian's libblas alternative is OpenBLAS's pthread build (installed with libopenblas-dev, the
# matmul benchmark's peer, and preferred over the OpenMP build), torch's matrix products ignore it
# and use every core: a "1-thread" PyTorch ran its products on two.
peer() {  # THREADS SCRIPT ARGS...: PyTorch as the peers' README says to run it
  local threads=$1; shift
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=$threads PEER_THREADS=$threads \
    /usr/bin/python3 "$peers/pytorch/$@"
}
ours() {  # FILTER [BINARY]: ms per step from Google Benchmark's JSON
  ours_and_share "$@" | awk '{print $1}'
}
ours_and_share() {  # FILTER [BINARY]: ms per step, and the model FLOPs' share of the FMA roofline
  "${2:-$bench}" --benchmark_filter="$1" --benchmark_format=json 2>/dev/null |
    grep -oE '"(ms_per_step|of_fma_peak)": [0-9.e+-]*' | head -2 | sort | awk '{printf "%s ", $2} END {print ""}'
}
# Columns after the ratio: the step's model FLOPs (bench/model_flops.hpp) as a share of the
# threads' f32 FMA roofline (f32_fma/peak) for lmkit and for PyTorch (the same FLOPs in its time),
# and the share a step at half PyTorch's time would need: above 100%, no f32 step can get there.
f32_row() {  # NAME THREADS PYTORCH_MS "LMKIT_MS SHARE"
  awk -v n="$1" -v t=$2 -v p="$3" -v o="${4% *}" -v s="${4#* }" \
    'BEGIN { printf "%-28s %8s %14.2f %12.2f %7.2fx %10.0f%% %10.0f%% %10.0f%%\n", n, t, p, o, p / o, 100 * s, 100 * s * o / p, 200 * s * o / p }'
}
printf '%-28s %8s %14s %12s %8s %11s %11s %11s\n' run threads "PyTorch ms" "lmkit ms" ratio "lmkit/peak" "torch/peak" "2x needs"
for threads in 1 2; do
  theirs=$(peer $threads train_gpt_shakespeare.py 200 | sed -nE 's/.* ([0-9.]+) ms\/iter.*/\1/p')
  f32_row "gpt shakespeare (nanoGPT)" $threads "$theirs" "$(ours_and_share "^gpt_step/shakespeare/$threads/")"
done
for threads in 1 2; do
  theirs=$(peer $threads train_lstm_shakespeare.py 100 | sed -nE 's/.* ([0-9.]+) ms\/iter.*/\1/p')
  f32_row "char LSTM 2x256" $threads "$theirs" "$(ours_and_share "^lstm_step/shakespeare/$threads/" "$build/bench/bench_lstm")"
done
if [ "${2:-}" = gpt2 ]; then
  for threads in 1 2; do
    theirs=$(peer $threads train_gpt2_step.py | sed -nE 's/.*: ([0-9.]+) ms\/step.*/\1/p')
    f32_row "gpt2 small AdamW 4x256" $threads "$theirs" "$(ours_and_share "^gpt_step/gpt2_small/$threads/")"
  done
fi
"$bench" --benchmark_filter='^f32_fma/peak$' --benchmark_format=json 2>/dev/null |
  grep -oE '"GFLOP/s": [0-9.e+-]*' | awk '{printf "f32 FMA roofline (f32_fma/peak): %.1f GFLOP/s per core\n", $2}'
# lmkit's bf16 products (AMX tiles or AVX512-BF16) beside PyTorch's fp32 step (the issue's peer) and beside
# PyTorch under autocast to bfloat16 (like for like; bench/pytorch_autocast_step.py).
autocast() {  # THREADS shakespeare|gpt2
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=$1 PEER_THREADS=$1 \
    /usr/bin/python3 "$here/pytorch_autocast_step.py" "$2" "$peers/pytorch" | sed -nE 's/.*: ([0-9.]+) ms\/step.*/\1/p'
}
printf '%-28s %8s %14s %14s %12s %10s %10s\n' "run (lmkit bf16 products)" threads "PyTorch fp32" "PyTorch bf16" "lmkit ms" "vs fp32" "vs bf16"
# The fp32 peer runs again here rather than reusing the figure above: this host's speed drifts
# between minutes, so each ratio compares runs made one right after the other.
bf16_row() {  # NAME THREADS FILTER PEER_SCRIPT PEER_SED AUTOCAST_NAME [BINARY]
  local fp32 bf16 mine
  fp32=$(peer $2 $4 | sed -nE "$5")
  bf16=$(autocast $2 $6)
  mine=$(ours "$3" "${7:-}")
  awk -v n="$1" -v t=$2 -v p="$fp32" -v q="$bf16" -v o="$mine" \
    'BEGIN { printf "%-28s %8s %14.2f %14.2f %12.2f %9.2fx %9.2fx\n", n, t, p, q, o, p / o, q / o }'
}
for threads in 1 2; do
  bf16_row "gpt shakespeare (nanoGPT)" $threads "^gpt_step/shakespeare_bf16/$threads/" "train_gpt_shakespeare.py 200" \
    's/.* ([0-9.]+) ms\/iter.*/\1/p' shakespeare
done
# (PyTorch 1.13's CPU autocast keeps nn.LSTM in fp32: its "bf16" LSTM step has only the output
# layer in bf16; see bench/pytorch_autocast_step.py.)
for threads in 1 2; do
  bf16_row "char LSTM 2x256" $threads "^lstm_step/shakespeare_bf16/$threads/" "train_lstm_shakespeare.py 100" \
    's/.* ([0-9.]+) ms\/iter.*/\1/p' lstm "$build/bench/bench_lstm"
done
if [ "${2:-}" = gpt2 ]; then
  for threads in 1 2; do
    bf16_row "gpt2 small AdamW 4x256" $threads "^gpt_step/gpt2_small_bf16/$threads/" train_gpt2_step.py \
      's/.*: ([0-9.]+) ms\/step.*/\1/p' gpt2
  done
fi
