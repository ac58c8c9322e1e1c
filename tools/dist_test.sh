#!/usr/bin/env bash
# Evaluate a checkpoint on N processes with torchrun:
#   tools/dist_test.sh CONFIG CHECKPOINT N [tools/test.py options]
# Without CUDA the processes run on the CPU over gloo (tools/test.py sets it up).
# Environment: PYTHON (interpreter, default python), NNODES, NODE_RANK, MASTER_ADDR, PORT.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT NUM_PROCESSES [test.py options]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
TOOLS_DIR=$(dirname "$0")
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" \
    "$TOOLS_DIR/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
