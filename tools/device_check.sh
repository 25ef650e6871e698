#!/usr/bin/env bash
# One short, prepared check of the GPU backend on a machine with a GPU,
# with a prebuilt `mlmix` (no build there): the bench's inputs evaluated on
# the CPU and the GPU side by side (`mlmix bench`), then one start of the
# default FMA-GoM fitted on each backend (adaptive quadrature, as a user
# runs it, at most 30 quasi-Newton iterations), each step under its own
# time limit (about 9 minutes in all at most). Results go to $OUT (or
# /tmp/device-check).
#
# Here, first (writes the inputs and a stripped binary, about 15 MB):
#   cargo xtask bench --only gpu --quick      # target/bench-data/gpu_*.inp
#   cargo build --release -p mlmix-cli
#   mkdir -p target/device && strip -o target/device/mlmix target/release/mlmix
# then on the device machine, from the repository root, carrying
# target/device and target/bench-data:
#   tools/device_check.sh
# ONLY="gpu_lca_10000" limits the bench step to the inputs named; FIT=0
# skips the fits.
set -u
exe=${MLMIX:-target/device/mlmix}
data=${BENCH_DATA:-target/bench-data}
out=${OUT:-/tmp/device-check}
mkdir -p "$out"
if [ ! -x "$exe" ] || [ ! -d "$data" ]; then
    echo "device_check: needs $exe and $data (see the top of $0)" >&2
    exit 2
fi
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
    nproc
} >"$out/machine.txt"
cat "$out/machine.txt"

inputs=${ONLY:-"gpu_lca_10000 gpu_lca_100000 gpu_gom3_default gpu_fmagom4_mc500 gpu_fmagom4_default"}
for name in $inputs; do
    echo "== bench $name"
    timeout 60 "$exe" bench -n 3 "$data/$name.inp" >"$out/bench_$name.txt" 2>&1
    echo "rc $?" >>"$out/bench_$name.txt"
    tail -n 12 "$out/bench_$name.txt"
done

if [ "${FIT:-1}" != 0 ] && [ -f "$data/gpu_fmagom4_default.inp" ]; then
    # one start (the seed of the best start in docs/gom.md; STARTS = 0
    # would leave the classes identical), the default (adaptive)
    # integration, 30 quasi-Newton iterations at most: the same work on
    # both backends
    fit="$data/device_fmagom4_fit.inp"
    sed -e 's/STARTS = 20 4; ADAPTIVE = OFF;/OPTSEED = 663252; ITERATIONS = 30;/' \
        "$data/gpu_fmagom4_default.inp" >"$fit"
    for backend in gpu cpu; do
        echo "== fit $backend"
        start=$(date +%s.%N)
        timeout 150 "$exe" fit -q --backend "$backend" --json "$out/fit_$backend.json" "$fit" \
            >"$out/fit_$backend.txt" 2>&1
        rc=$?
        end=$(date +%s.%N)
        echo "rc $rc, $(echo "$end - $start" | bc) s" | tee -a "$out/fit_$backend.txt"
    done
fi
