#!/usr/bin/env bash
# The training recipe on a CUDA GPU, in one short run: where a training step's time goes at GPU batch sizes (fp32 and
# bf16, the full and the pruned RNN-T loss, three model sizes), then a real `parley train` run of a 19 M-parameter
# model (bf16, 12 data-loader workers, checkpoints, dev decoding), resumed from its checkpoint, and its checkpoint
# loaded and decoded on the CPU. What it measures goes to OUT (default /tmp/gpu-check): logs.txt (the printed figures,
# the environment, GPU utilization), profile-step-{bf16,fp32}.json, log-LOSS.jsonl and train-curve-LOSS.png per
# training run, train-summary.json (seconds per step, audio seconds per second, dev WER).
#
#     bash benchmarks/gpu_check.sh DATA OUT
#
# DATA holds train.jsonl and dev.jsonl (any manifests; a few hundred utterances do: the train manifest is repeated
# so that one epoch outlasts the run). On the workplace's GPU machine the command is run from the repository root
# with DATA=.gpu/data (a few hundred corpus utterances as Ogg/Opus, ignored by git) and the wheels that machine lacks
# in .whl (soundfile, cffi, pycparser, kaldi-native-fbank), installed into /tmp/site first.
# Figures: benchmarks/results/gpu/ and docs/training.md ("Training on a GPU").
set -uo pipefail
DATA=${1:-.gpu/data}
OUT=${2:-${OUT:-/tmp/gpu-check}}
PY=${PY:-python3}
TRAIN_SECONDS=${TRAIN_SECONDS:-200}  # wall-clock cap of the first training run (the resumed one adds 50 steps)
STEPS=${STEPS:-600}
DEVICE=${DEVICE:-cuda}
UTTS=${UTTS:-64}  # utterances in the profiled batch
PROFILE_STEPS=${PROFILE_STEPS:-5}
WORKERS=${WORKERS:-12}
MAX_SECONDS=${MAX_SECONDS:-300}  # padded audio seconds per training batch
LOSSES=${LOSSES:-pruned}  # one training run per loss: pruned and/or full
RESUME=${RESUME:-1}  # resume each run from its checkpoint for 50 more steps
CPU_EVAL=${CPU_EVAL:-1}  # decode dev with the last run's checkpoint on the CPU
PROFILE_FP32=${PROFILE_FP32:-1}
W=$(mktemp -d)  # the run's own files; OUT gets the few that matter
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ "${INSTALL_WHEELS:-1}" = 1 ] && ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:${PYTHONPATH:-} || exit 1
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}

{ date -u; nproc; free -g | head -2; nvidia-smi 2>&1 | head -15; } > "$W/env.txt" 2>&1
$PY -c "import torch, numpy, sentencepiece, soundfile, kaldi_native_fbank; print('torch', torch.__version__, \
'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" \
    | tee -a "$W/env.txt" || exit 1

echo "== 1. one step, timed by part (bf16, then fp32)"
timeout 170 $PY benchmarks/profile_step.py --device "$DEVICE" --amp bf16 --models en-small en-20m en-30m --vocab 500 \
    --recipes full pruned --utterances $UTTS --seconds 5 --steps $PROFILE_STEPS --threads 8 --out "$OUT/profile-step-bf16.json" \
    2>&1 | tee "$W/profile-bf16.log" | grep -v "^|"
[ "$PROFILE_FP32" = 1 ] && timeout 60 $PY benchmarks/profile_step.py --device "$DEVICE" --models en-small en-20m --vocab 500 --recipes pruned \
    --utterances $UTTS --seconds 5 --steps $PROFILE_STEPS --threads 8 --out "$OUT/profile-step-fp32.json" \
    2>&1 | tee "$W/profile-fp32.log" | grep -v "^|"

echo "== 2. parley train on $DEVICE: 19 M parameters, bf16, $MAX_SECONDS s batches, loss: $LOSSES"
$PY - "$DATA" "$W" <<'EOF'
import json, sys
from pathlib import Path
data = Path(sys.argv[1])
lines = [json.loads(x) for x in open(data / "train.jsonl")]
with open(Path(sys.argv[2]) / "train-repeated.jsonl", "w") as f:  # an epoch that outlasts the run
    for r in range(80):
        for u in lines:
            f.write(json.dumps({**u, "id": f"{u['id']}-r{r}", "audio": str((data / u["audio"]).resolve())}) + "\n")
EOF
(nvidia-smi dmon -s um -d 5 > "$W/dmon.txt" 2>&1 &)
logs=()
for loss in $LOSSES; do
    EXP=/tmp/gpu-exp-$loss
    TRAIN=($PY -m models.train.train --train "$W/train-repeated.jsonl" --dev "$DATA/dev.jsonl"
        --tokenizer bundles/en-open/bpe.model --exp-dir $EXP --d-model 256 --layers 12 --heads 4 --ff-dim 1024
        --loss $loss --prune-range 5 --rnnt-type modified --epochs 100 --max-seconds $MAX_SECONDS --lr 1e-3
        --warmup-steps 100 --dropout 0.1 --ctc-weight 0.3 --amp bf16 --num-workers $WORKERS --dev-utts 48
        --dev-every 200 --checkpoint-every 50)
    timeout "$TRAIN_SECONDS" "${TRAIN[@]}" --max-steps "$STEPS" > "$W/train-$loss.log" 2>&1
    echo "$loss: rc $? (124: stopped at ${TRAIN_SECONDS} s, after its last checkpoint)"
    logs+=("train-$loss.log")
    if [ "$RESUME" = 1 ]; then
        step=$($PY -c "import torch; print(torch.load('$EXP/last.pt', map_location='cpu', weights_only=False)['state']['step'])")
        echo "resuming at step $step for 50 more"
        timeout 120 "${TRAIN[@]}" --max-steps $((step + 50)) > "$W/train-$loss-resume.log" 2>&1
        echo "resumed run: rc $?"
        logs+=("train-$loss-resume.log")
    fi
    [ -f $EXP/last.pt ] && $PY - "$EXP/last.pt" "$OUT/log-$loss.jsonl" <<'EOF'
import json, sys, torch
state = torch.load(sys.argv[1], map_location="cpu", weights_only=False)["state"]
with open(sys.argv[2], "w") as f:
    for r in state["log"]:
        f.write(json.dumps(r) + "\n")
EOF
    cp $EXP/curve.png "$OUT/train-curve-$loss.png" 2>/dev/null
    tr '\r' '\n' < "$W/train-$loss.log" | grep -E "parameters|dev WER|Error|error" | tail -6
done
pkill -f "nvidia-smi dmon" || true

if [ "$CPU_EVAL" = 1 ] && [ -f $EXP/last.pt ]; then
    echo "== 3. the GPU-trained checkpoint on the CPU"
    CUDA_VISIBLE_DEVICES= timeout 120 $PY -m models.eval.evaluate --checkpoint $EXP/last.pt \
        --tokenizer bundles/en-open/bpe.model --manifest "$DATA/dev.jsonl" --limit 16 --threads 4 2>&1 \
        | tr '\r' '\n' | grep -E "WER|parameters|Error" | tee "$W/cpu-eval.txt"
    logs+=(cpu-eval.txt)
fi
$PY - "$OUT" $LOSSES <<'EOF'
import json, statistics, sys
from pathlib import Path
out, summary = Path(sys.argv[1]), {}
for loss in sys.argv[2:]:
    if not (out / f"log-{loss}.jsonl").exists():
        continue
    rows = [json.loads(x) for x in open(out / f"log-{loss}.jsonl")]
    log = [r for r in rows if "audio_s" in r]
    if len(log) > 20:
        a, b = log[10], log[-1]  # past the warm-up steps
        steps, secs = b["step"] - a["step"], b["seconds"] - a["seconds"]
        summary[loss] = {
            "steps": b["step"], "timed_steps": steps, "seconds_per_step": secs / steps,
            "audio_seconds_per_second": sum(r["audio_s"] for r in log[11:]) / secs,
            "median_batch_audio_s": statistics.median(r["audio_s"] for r in log),
            "dev_wer": [r for r in rows if "dev_wer" in r],
        }
print(json.dumps(summary))
(out / "train-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
EOF
for f in env.txt profile-bf16.log profile-fp32.log dmon.txt "${logs[@]}"; do
    echo "===== $f"; tr '\r' '\n' < "$W/$f" | grep -v -E "(it/s|s/it)" | tail -60
done > "$OUT/logs.txt" 2>&1
