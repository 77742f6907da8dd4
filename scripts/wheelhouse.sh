#!/usr/bin/env bash
# Collect everything `scripts/offline_install.sh` needs to build the environment on a compute node WITHOUT
# internet: run this on a machine that reaches the package registry, copy the folder to the cluster.
# Based on the steps that worked on an offline H100 node (mmcv 2.1.0 has no wheel for recent torch: its
# SOURCE archive is carried and built on the node, against the node's torch/CUDA).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/wheelhouse.sh [options]

Download (or build, for pure-Python source-only packages) the wheels of requirements.txt and their
dependencies, mmcv 2.1.0's source archive and mmcv's build tools into one folder (the "wheelhouse").

Options:
  -o, --out DIR            wheelhouse folder (default: wheelhouse)
  -p, --python PY          interpreter of the target's Python version, used for a native collection
                           (default: python3; it must match the node's Python minor version and platform)
      --python-version X.Y cross collection for another Python/platform (binary wheels only), e.g. 3.12
      --platform TAG       with --python-version, repeatable (default: manylinux_2_28_x86_64,
                           manylinux_2_17_x86_64, manylinux2014_x86_64)
      --torch SPEC         also collect torch, e.g. 'torch==2.6.0' (default: none: the node provides torch,
                           e.g. a CUDA module or container; offline_install.sh then uses --system-site-packages)
      --torch-index URL    index of that torch, e.g. https://download.pytorch.org/whl/cu124
      --mmcv-wheel FILE    also carry an mmcv 2.1.0 wheel built with ops on a machine of the target's kind
                           (same Python, same torch build; e.g. pip's cache after scripts/setup_env.sh):
                           offline_install.sh then installs it instead of compiling mmcv (5-20 min)
  -h, --help               this help

Then, on the node:   scripts/offline_install.sh --wheelhouse wheelhouse
EOF
}

out=wheelhouse py=python3 pyver="" torch_spec="" torch_index="" mmcv_wheel=""
platforms=()
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--out) out=$2; shift 2 ;;
    -p|--python) py=$2; shift 2 ;;
    --python-version) pyver=$2; shift 2 ;;
    --platform) platforms+=("$2"); shift 2 ;;
    --torch) torch_spec=$2; shift 2 ;;
    --torch-index) torch_index=$2; shift 2 ;;
    --mmcv-wheel) mmcv_wheel=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "wheelhouse.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
# mmcv's build needs these on the node (setup.py and mmengine import pkg_resources: setuptools < 81;
# torch >= 2.6 needs >= 77); mmcv's runtime deps (addict, yapf, opencv-python ...) come with mmengine's.
build_tools=("setuptools>=77,<81" wheel ninja numpy packaging)
reqs=(-r "$here/requirements.txt")

if [ -z "$pyver" ]; then
  echo "[wheelhouse] native collection for $("$py" -c 'import sys, sysconfig; print(sys.version.split()[0], sysconfig.get_platform())')"
  # pip wheel: wheels where they exist, pure-Python source-only packages built into wheels here.
  "$py" -m pip wheel --quiet --wheel-dir "$out" "${reqs[@]}" "${build_tools[@]}"
  if [ -n "$torch_spec" ]; then
    "$py" -m pip download --quiet --dest "$out" ${torch_index:+--index-url "$torch_index"} "$torch_spec"
  fi
else
  [ ${#platforms[@]} -gt 0 ] || platforms=(manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64)
  abi="cp${pyver/./}"
  plat=(--only-binary=:all: --python-version "$pyver" --implementation cp --abi "$abi")
  for p in "${platforms[@]}"; do plat+=(--platform "$p"); done
  echo "[wheelhouse] cross collection for CPython $pyver (${platforms[*]}), binary wheels only"
  # Some pure-Python dependencies publish only a source archive (snakemake's connection_pool): build those
  # into py3-none-any wheels with this Python first; the cross download then finds them in the wheelhouse.
  pure=$(mktemp -d)
  "$py" -m pip wheel --quiet --wheel-dir "$pure" "${reqs[@]}" "${build_tools[@]}"
  cp "$pure"/*-none-any.whl "$out"/
  rm -rf "$pure"
  "$py" -m pip download --quiet "${plat[@]}" --find-links "$out" --dest "$out" "${reqs[@]}" "${build_tools[@]}" || {
    echo "[wheelhouse] a package has no wheel for that target: run the native collection with the target's" \
         "Python instead (--python /path/to/python$pyver)" >&2; exit 1; }
  if [ -n "$torch_spec" ]; then
    "$py" -m pip download --quiet "${plat[@]}" --dest "$out" ${torch_index:+--index-url "$torch_index"} "$torch_spec"
  fi
fi

# mmcv 2.1.0 as a source archive: its metadata step imports pkg_resources, so fetch it from a throw-away
# venv holding a setuptools that still ships it, without build isolation.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/v"
"$tmp/v/bin/python" -m pip install --quiet "setuptools>=77,<81" wheel
"$tmp/v/bin/python" -m pip download --quiet --no-deps --no-binary=:all: --no-build-isolation --dest "$out" mmcv==2.1.0
ls "$out"/mmcv-2.1.0.tar.gz >/dev/null
if [ -n "$mmcv_wheel" ]; then
  case "$(basename "$mmcv_wheel")" in
    mmcv-2.1.0-*.whl) cp "$mmcv_wheel" "$out"/ ;;
    *) echo "wheelhouse.sh: --mmcv-wheel $mmcv_wheel is not an mmcv-2.1.0-*.whl file" >&2; exit 2 ;;
  esac
fi

( cd "$out" && ls -1 > MANIFEST.txt )
echo "[wheelhouse] $(wc -l < "$out/MANIFEST.txt") files in $out (mmcv-2.1.0.tar.gz built on the node)"
echo "[wheelhouse] next, on the node: scripts/offline_install.sh --wheelhouse $out"
