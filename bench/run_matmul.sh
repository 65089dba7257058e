#!/usr/bin/env bash
# Runs bench_matmul and prints lmkit's GFLOP/s beside OpenBLAS's, with the ratio, for each shape
# and thread count. OpenBLAS 0.3.21 does not know Zen 5: its default picks Haswell-class kernels,
# and OPENBLAS_CORETYPE=SkylakeX selects its AVX-512 kernels. Both are run (SkylakeX only where
# the CPU has AVX-512) and lmkit is compared with the better of the two.
#
#   bench/run_matmul.sh [BUILD_DIR] [REPETITIONS]
set -euo pipefail
build=${1:-build}
reps=${2:-3}
bench="$build/bench/bench_matmul"
[ -x "$bench" ] || { echo "run_matmul: $bench not found: build with -DLMKIT_BUILD_BENCHMARKS=ON" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() {  # name, then env assignments
  local name=$1; shift
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@" "$bench" --benchmark_format=csv \
    --benchmark_repetitions="$reps" --benchmark_min_time=0.2 2>/dev/null | grep -E '^"(lmkit|openblas|amx)/' > "$out/$name.csv"
}

run default
if grep -q avx512f /proc/cpuinfo; then
  run skylakex OPENBLAS_CORETYPE=SkylakeX
else
  echo "(this CPU has no AVX-512: OpenBLAS's SkylakeX kernels cannot run; comparing with its default only)"
fi

# Best (largest) GFLOP/s per benchmark over the repetitions and the OpenBLAS variants.
printf "%-10s %-20s %12s %14s %8s\n" layout "shape, threads" lmkit OpenBLAS ratio
awk -F, '
  {
    gsub(/"/, "", $0);
    split($1, p, "/"); lib = p[1]; variant = p[2];
    key = variant "|" p[3] "x" p[4] "x" p[5] " t" p[6];
    gflops = $(NF - 1) + 0;
    if (lib == "amx") next;
    if (lib == "lmkit") { if (gflops > L[key]) L[key] = gflops }
    else if (gflops > O[key]) { O[key] = gflops; source = FILENAME; sub(/.*\//, "", source); sub(/\.csv$/, "", source); S[key] = source }
  }
  END {
    for (k in L) {
      split(k, kk, "|");
      base = kk[1]; sub(/^bf16_(products_)?/, "f32_", base);  # bf16 weights or products: beside f32
      ok = base "|" kk[2];
      if (ok in O) printf "%-10s %-20s %7.1f GF/s %9.1f GF/s %7.2fx  (OpenBLAS %s)\n", kk[1], kk[2], L[k], O[ok], L[k] / O[ok], S[ok];
      else printf "%-10s %-20s %7.1f GF/s\n", kk[1], kk[2], L[k];
    }
  }' "$out"/*.csv | sort -k1,1 -k3,3 -k2,2V

# The AMX rooflines (bench_matmul.cpp): the tiles' own rate and the multiplication of packed operands.
awk -F, '{ gsub(/"/, "", $0); if ($1 ~ /^amx\// && $(NF - 1) + 0 > R[$1]) R[$1] = $(NF - 1) + 0 }
  END { for (k in R) printf "%-40s %9.1f GF/s (one thread)\n", k, R[k] }' "$out/default.csv" | sort
