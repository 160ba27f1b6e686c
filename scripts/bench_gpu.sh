#!/usr/bin/env bash
# Every GPU figure of the README's Benchmarks section in one go, each part under its own time limit:
#     bash scripts/bench_gpu.sh OUTDIR [PYTHON]
# Writes OUTDIR/{gpu,models,compare,predict,tiling}.txt (the card, the step table at the paper's batch
# sizes, fp32 eager vs the fast path, survey prediction, the CUDA autocast test).
set -u
out=${1:?usage: bench_gpu.sh OUTDIR [PYTHON]}
python=${2:-python}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt" 2>&1
"$python" -c "import torch, timm, peft; print('torch', torch.__version__, 'timm', timm.__version__,
'peft', peft.__version__, torch.cuda.get_device_name())" >>"$out/gpu.txt" 2>&1
timeout 170 "$python" scripts/bench_models.py --device cuda --warmup 2 --steps 5 >"$out/models.txt" 2>&1
timeout 170 "$python" scripts/bench_models.py --device cuda --compare --warmup 2 --steps 5 \
    --tasks salt das seam --networks unet linear dpt >"$out/compare.txt" 2>&1
timeout 90 "$python" scripts/bench_predict.py --inlines 32 128 --crosslines 400 --samples 400 \
    --batch-size 32 >"$out/predict.txt" 2>&1
timeout 60 "$python" -m pytest -q -p no:cacheprovider tests/test_tiling.py -k autocast >"$out/tiling.txt" 2>&1
tail -n 3 "$out"/*.txt
