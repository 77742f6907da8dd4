#!/usr/bin/env bash
# Create (or complete) the project's virtual environment in $VENV (default .venv).
# torch: the local CPU wheel when no NVIDIA GPU is present, else the registry's CUDA build;
# mmcv 2.1.0 is built from source with ops (no wheel exists for recent torch);
# then mmdet/mmengine/snakemake and the project itself (editable).
set -euo pipefail
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
stamp="$VENV/.ld-repro-complete"
if [ -f "$stamp" ] && [ "$stamp" -nt requirements.txt ] && [ "$stamp" -nt pyproject.toml ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip="$VENV/bin/python -m pip"
$pip install -q --upgrade pip
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "[setup] torch already installed: $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "[setup] NVIDIA GPU found: installing CUDA torch"
  $pip install "torch>=2.6"
else
  echo "[setup] no GPU: installing CPU torch 2.13.0"
  $pip install torch==2.13.0
fi
# mmcv's setup.py and mmengine import pkg_resources (setuptools < 81); torch 2.13 needs >= 77.
$pip install -q "setuptools>=77,<81" wheel ninja numpy packaging
if ! "$VENV/bin/python" -c "import mmcv.ops" 2>/dev/null; then
  echo "[setup] building mmcv 2.1.0 with ops from source (5-7 min on 2 cores; pip caches the wheel)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} $pip install --no-build-isolation mmcv==2.1.0
fi
$pip install -r requirements.txt
$pip install --no-build-isolation --no-deps -e .
$pip check
touch "$stamp"
echo "[setup] environment ready in $VENV"
