#!/usr/bin/env bash
# Build the project's environment on a compute node WITHOUT internet, from the folder scripts/wheelhouse.sh
# collected: everything installs with `pip --no-index --find-links`, and mmcv 2.1.0 is built from its
# source archive with its ops, against the node's torch (CUDA ops when torch has CUDA).
# Measured on one H100 node (16 cores, sm_90 only), the mmcv build takes about 5 min.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/offline_install.sh [options]

Create (or complete) a virtual environment from a wheelhouse, offline:
  1. pip install --no-index --find-links WHEELHOUSE  setuptools>=77,<81 wheel ninja numpy packaging
  2. torch: the node's own (--system-site-packages, default when the Python already imports torch),
     else a torch wheel from the wheelhouse
  3. mmcv 2.1.0: the prebuilt wheel of the wheelhouse if it has one (--mmcv-wheel) and its ops load here,
     else built from WHEELHOUSE/mmcv-2.1.0.tar.gz: MMCV_WITH_OPS=1, --no-build-isolation; with CUDA torch
     FORCE_CUDA=1 and TORCH_CUDA_ARCH_LIST of this node's GPU (or --cuda-arch)
  4. requirements.txt, then this project (editable, --no-deps), pip check, an mmcv ops smoke test

Options:
  -w, --wheelhouse DIR   folder from scripts/wheelhouse.sh (default: wheelhouse)
      --venv DIR         environment to create (default: .venv, the one `make` uses)
  -p, --python PY        Python to build it from (default: python3; the wheelhouse's Python version)
      --cuda-arch LIST   e.g. "8.0;9.0" (default: the visible GPU's compute capability); needed when
                         building on a node without a GPU for GPUs of another kind
      --jobs N           parallel compile jobs (default: nproc)
  -h, --help             this help

Afterwards: .venv/bin/snakemake --profile workflow/profiles/slurm ...   (see docs/cluster.md)
EOF
}

wh=wheelhouse venv=.venv py=python3 arch="" jobs=$(nproc 2>/dev/null || echo 4)
while [ $# -gt 0 ]; do
  case "$1" in
    -w|--wheelhouse) wh=$2; shift 2 ;;
    --venv) venv=$2; shift 2 ;;
    -p|--python) py=$2; shift 2 ;;
    --cuda-arch) arch=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "offline_install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$wh" ] || { echo "offline_install.sh: wheelhouse $wh does not exist (run scripts/wheelhouse.sh)" >&2; exit 2; }
wh=$(cd "$wh" && pwd)
[ -f "$wh/mmcv-2.1.0.tar.gz" ] || { echo "offline_install.sh: $wh/mmcv-2.1.0.tar.gz is missing" >&2; exit 2; }
cd "$here"

if [ ! -x "$venv/bin/python" ]; then
  if "$py" -c "import torch" 2>/dev/null; then
    echo "[offline] $py has torch $("$py" -c 'import torch; print(torch.__version__)'): venv with --system-site-packages"
    "$py" -m venv --system-site-packages "$venv"
  else
    "$py" -m venv "$venv"
  fi
fi
vpy="$venv/bin/python"
pip=("$vpy" -m pip install --quiet --no-index --find-links "$wh")

"${pip[@]}" "setuptools>=77,<81" wheel ninja numpy packaging
if ! "$vpy" -c "import torch" 2>/dev/null; then
  ls "$wh"/torch-*.whl >/dev/null 2>&1 || {
    echo "offline_install.sh: no torch on this node and none in $wh (scripts/wheelhouse.sh --torch ...)" >&2; exit 2; }
  "${pip[@]}" torch
fi
cuda=$("$vpy" -c "import torch; print(1 if torch.version.cuda else 0)")

if ! "$vpy" -c "import mmcv.ops" 2>/dev/null && ls "$wh"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  # a wheel built with ops on a node of this kind (wheelhouse.sh --mmcv-wheel): no compilation; kept only if
  # its ops load against this torch
  echo "[offline] installing the prebuilt $(basename "$(ls "$wh"/mmcv-2.1.0-*.whl | head -1)")"
  "${pip[@]}" "$(ls "$wh"/mmcv-2.1.0-*.whl | head -1)" && "$vpy" -c "import mmcv.ops" 2>/dev/null || {
    echo "[offline] the prebuilt mmcv wheel does not load here (another torch build?): building from source";
    "$vpy" -m pip uninstall --quiet --yes mmcv; }
fi
if ! "$vpy" -c "import mmcv.ops" 2>/dev/null; then
  env_vars=(MMCV_WITH_OPS=1 MAX_JOBS="$jobs")
  if [ "$cuda" = 1 ]; then
    if [ -z "$arch" ]; then
      arch=$("$vpy" -c "import torch; c = torch.cuda.get_device_capability(); print(f'{c[0]}.{c[1]}')" 2>/dev/null) || {
        echo "offline_install.sh: no GPU visible to detect its architecture: pass --cuda-arch (e.g. 9.0)" >&2; exit 2; }
    fi
    env_vars+=(FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$arch")
    echo "[offline] building mmcv 2.1.0 with CUDA ops for sm $arch ($jobs jobs)"
  else
    echo "[offline] building mmcv 2.1.0 with CPU ops ($jobs jobs): torch has no CUDA"
  fi
  env "${env_vars[@]}" "${pip[@]}" --no-build-isolation "$wh/mmcv-2.1.0.tar.gz"
fi

"${pip[@]}" -r requirements.txt
"${pip[@]}" --no-build-isolation --no-deps -e .
"$vpy" -m pip check || echo "[offline] warning: pip check reports conflicts (above); with --system-site-packages they may be the node's"
"$vpy" - <<'PY'
import torch, mmcv, mmdet, mmengine
from mmcv.ops import nms
dev = "cuda" if torch.cuda.is_available() else "cpu"
boxes = torch.rand(8, 4, device=dev); boxes[:, 2:] += boxes[:, :2]
nms(boxes, torch.rand(8, device=dev), 0.5)
import ld_core.models  # noqa: F401
print(f"[offline] torch {torch.__version__}, mmcv {mmcv.__version__} (ops ok on {dev}), mmdet {mmdet.__version__}, "
      f"mmengine {mmengine.__version__}")
PY
touch "$venv/.ld-repro-complete"  # `make` treats the environment as built
echo "[offline] environment ready in $venv"
