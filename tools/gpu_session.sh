#!/usr/bin/env bash
# One GPU session for mmrmt: install from a wheelhouse, then run tools/check_cuda.py and the GPU
# benchmarks, most valuable first, within a time budget (default 8 minutes).
#
#   bash tools/gpu_session.sh WHEELHOUSE [OUT_DIR]        # from the repository root
#
# WHEELHOUSE holds wheels for the GPU machine, which has no internet: pip installs from it only
# (--no-index). It needs torch with CUDA (and its triton, which compiles FlexAttention), mmcv
# built with CUDA ops (MMCV_WITH_OPS=1 FORCE_CUDA=1 against that torch: Mask R-CNN's RoIAlign and
# NMS), and the rest of requirements.txt (mmengine, mmdet, mmsegmentation, numpy, ...). A torch
# with CUDA already on the machine is used as it is.
#
# Results go to OUT_DIR (default $OUT, else ./gpu_session_out): one log per step, summary.txt
# with each step's exit code and seconds, and the benchmark reports in benchmarks.md.
# BUDGET_S (default 480) bounds the whole session; a step that no longer fits is skipped.

set -uo pipefail
WHEELHOUSE=${1:?usage: bash tools/gpu_session.sh WHEELHOUSE [OUT_DIR]}
OUT_DIR=${2:-${OUT:-gpu_session_out}}
BUDGET_S=${BUDGET_S:-480}
START=$SECONDS
mkdir -p "$OUT_DIR"
SUMMARY="$OUT_DIR/summary.txt"

# step NAME LIMIT_S COMMAND...: run COMMAND for at most LIMIT_S seconds (less if the budget is
# nearly spent), its output in OUT_DIR/NAME.log; skipped when under 30 s are left.
step() {
    local name=$1 limit=$2 left began rc
    shift 2
    left=$((BUDGET_S - (SECONDS - START)))
    ((left < limit)) && limit=$left
    if ((limit < 30)); then
        echo "$name: skipped, ${left}s of the budget left" | tee -a "$SUMMARY"
        return
    fi
    began=$SECONDS
    timeout "$limit" "$@" >"$OUT_DIR/$name.log" 2>&1
    rc=$?
    echo "$name: rc=$rc, $((SECONDS - began))s (limit ${limit}s)" | tee -a "$SUMMARY"
    tail -n 3 "$OUT_DIR/$name.log"
}

# A venv that sees the machine's packages (a CUDA torch, if there is one) and takes the rest.
VENV=${VENV:-/tmp/mmrmt-gpu-venv}
python3 -m venv --system-site-packages "$VENV"
PY=$VENV/bin/python
if ! $PY -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    step install-torch 150 $PY -m pip install -q --no-index --find-links "$WHEELHOUSE" torch triton
fi
step install-deps 120 $PY -m pip install -q --no-index --find-links "$WHEELHOUSE" \
    -c requirements.txt mmengine mmcv mmdet mmsegmentation numpy opencv-python pycocotools \
    scipy shapely terminaltables prettytable ftfy regex matplotlib
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    $PY -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
    $PY -c "import mmcv.ops, mmdet, mmseg; print('mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__)"
} >"$OUT_DIR/environment.txt" 2>&1
cat "$OUT_DIR/environment.txt"

# Most valuable first: correctness of 'flex' on the benchmark's arch, the headline timings, then
# autocast, AMP training, compile counts and the other archs.
step check-attention-s-t 120 $PY tools/check_cuda.py --checks attention --archs s t
BENCH=(tools/benchmark.py --arch s --device cuda --no-memory --output "$OUT_DIR/benchmarks.md")
IMPLS=(fast swin)
$PY tools/benchmark.py --help 2>/dev/null | grep -q flex && IMPLS=(fast flex swin)
step bench-infer-1x800x1216 60 $PY "${BENCH[@]}" --impls "${IMPLS[@]}" --size 800 1216
step bench-infer-8x800x1216 60 $PY "${BENCH[@]}" --impls "${IMPLS[@]}" --size 800 1216 --batch 8
step bench-train-2x512x512 60 $PY "${BENCH[@]}" --impls "${IMPLS[@]}" --size 512 512 --batch 2 \
    --mode train
step check-autocast 90 $PY tools/check_cuda.py --checks autocast
step check-amp 90 $PY tools/check_cuda.py --checks amp
step check-compile 150 $PY tools/check_cuda.py --checks compile
step check-attention-b-l 90 $PY tools/check_cuda.py --checks attention --archs b l
step bench-infer-bf16 60 $PY "${BENCH[@]}" --impls "${IMPLS[@]}" --size 800 1216 --dtype bf16
step bench-infer-compiled 120 $PY "${BENCH[@]}" --impls "${IMPLS[@]}" --size 800 1216 --compile
echo "session: $((SECONDS - START))s of ${BUDGET_S}s" | tee -a "$SUMMARY"
