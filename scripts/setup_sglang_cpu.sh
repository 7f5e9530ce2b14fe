#!/usr/bin/env bash
# Build SGLang's CPU environment in its own virtual environment (cached: re-running is a no-op).
#   bash scripts/setup_sglang_cpu.sh            # -> .venv-sglang
#   SGLANG_VENV=/path bash scripts/setup_sglang_cpu.sh
# Why not `pip install sglang`: its declared dependencies pull a CUDA torch and CUDA-only kernels
# (~11 GB) and the CPU engine then fails to start. This installs sglang without dependencies, then its
# non-CUDA requirements under a torch==2.13.0 (CPU) constraint, plus two import shims
# (scripts/sglang_cpu_shims: modules PyPI has only as CUDA builds, never executed for text models).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SGLANG_VENV:-.venv-sglang}
SGLANG_VERSION=0.5.23
STAMP="$VENV/.opd-suite-sglang-$SGLANG_VERSION"
if [ -f "$STAMP" ]; then echo "SGLang CPU env ready: $VENV"; exit 0; fi
python3 -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install -q torch==2.13.0
"$PIP" install -q --no-deps "sglang==$SGLANG_VERSION"
"$PIP" install -q packaging
CONSTRAINT=$(mktemp)
echo "torch==2.13.0" > "$CONSTRAINT"
mapfile -t REQS < <("$VENV/bin/python" scripts/sglang_cpu_requirements.py)
"$PIP" install -q -c "$CONSTRAINT" "${REQS[@]}" triton soundfile
"$PIP" install -q --no-deps timm
SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
cp -r scripts/sglang_cpu_shims/sgl_kernel scripts/sglang_cpu_shims/torchvision "$SITE/"
"$VENV/bin/python" -c "import sglang, torch; assert torch.__version__.endswith('+cpu'), torch.__version__; print('sglang', sglang.__version__, 'torch', torch.__version__)"
touch "$STAMP"
echo "SGLang CPU env ready: $VENV"
