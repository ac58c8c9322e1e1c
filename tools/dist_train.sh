#!/usr/bin/env bash
# Train on N processes of this machine (or several machines) with torchrun:
#   tools/dist_train.sh CONFIG N [tools/train.py options]
# Without CUDA the processes train on the CPU over gloo (tools/train.py sets it up).
# Environment: PYTHON (interpreter, default python), NNODES, NODE_RANK, MASTER_ADDR, PORT.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NUM_PROCESSES [train.py options]" >&2
    exit 2
fi
CONFIG=$1
NPROC=$2
TOOLS_DIR=$(dirname "$0")
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" \
    "$TOOLS_DIR/train.py" "$CONFIG" --launcher pytorch "${@:3}"
