#!/usr/bin/env bash
# The recipe's training stage on a lent GPU machine with no network (how cpe-tiny 2.x was trained):
# xraylib comes as a wheel in .whl/, the job runs detached (setsid) so that it outlives one
# remote command, and `watch` copies its log, checkpoint and ONNX export to a folder every time.
#
#   models/training/gpu_job.sh start   # install, then render data and train in the background
#   models/training/gpu_job.sh watch N OUTDIR   # follow for N seconds, then copy results to OUTDIR
#
# Settings by environment: JOB (default /tmp/cpe-job), SEED (1), MINUTES (16), BATCH (64),
# LR (0.003), ARCH (small), TRAIN_IMAGES (12000), DOMAIN (wide: hard negatives and drawn scanners,
# issue 20; narrow: the scenes 2.0.0 was trained on).
set -uo pipefail
cd "$(dirname "$0")/../.."
JOB=${JOB:-/tmp/cpe-job}
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1

case "${1:-}" in
start)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  nvidia-smi -L; df -h /dev/shm /tmp | tail -2; nproc; free -g | head -2
  python3 -c "import torch, xraylib, cv2, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'xraylib', xraylib.__version__, 'numpy', numpy.__version__)" || exit 1
  mkdir -p "$JOB"
  setsid nohup python3 -m models.training.recipe --seed "${SEED:-1}" --out "$JOB/out" --work "$JOB/work" \
    --stage train --workers "$(nproc)" --loaders "$(( $(nproc) - 2 ))" --batch "${BATCH:-64}" --lr "${LR:-0.003}" \
    --arch "${ARCH:-small}" --domain "${DOMAIN:-wide}" --max-minutes "${MINUTES:-16}" --train-images "${TRAIN_IMAGES:-12000}" \
    --steps 1000000 >"$JOB/log" 2>&1 < /dev/null &
  echo "started job $!"
  ;;
watch)
  end=$(( $(date +%s) + ${2:-60} ))
  while [ "$(date +%s)" -lt "$end" ]; do
    if [ -f "$JOB/out/model.onnx" ] || ! pgrep -f models.training.recipe >/dev/null; then break; fi
    sleep 5
  done
  out=${3:-$JOB/copy}; mkdir -p "$out"
  grep -v Warning "$JOB/log" | tail -40
  cp "$JOB/log" "$out/train.log" 2>/dev/null
  [ -f "$JOB/work/checkpoint.pt" ] && cp "$JOB/work/checkpoint.pt" "$out/"
  if [ -f "$JOB/out/model.onnx" ]; then cp "$JOB/out/model.onnx" "$out/"; echo "job finished"
  elif ! pgrep -f models.training.recipe >/dev/null; then echo "job is not running"
  else echo "job still running"; fi
  ;;
*) echo "usage: $0 start | watch SECONDS OUTDIR" >&2; exit 2 ;;
esac
