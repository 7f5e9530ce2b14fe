#!/usr/bin/env bash
# GPU benchmarks for the real-shape engine, in parts that each fit one 10-minute device call.
# Models are Qwen3-shape stand-ins with RANDOM weights (artifacts/qwen3/README.md).
#   bash scripts/bench_gpu.sh env          # what the machine has; wheels installed (see below)
#   bash scripts/bench_gpu.sh rollout-a    # generate vs static engine, 1.7B and 4B shapes, batch 64, 256 new tokens
#   bash scripts/bench_gpu.sh rollout-b    # the same at 2048 new tokens
#   bash scripts/bench_gpu.sh final-1gpu   # both engines at 256 (1.7B, 4B), the engine alone for 4B at 2048
#   bash scripts/bench_gpu.sh long-1gpu M  # both engines at 2048 for model M (generate: minutes a run)
#   bash scripts/bench_gpu.sh kernels-1gpu # GEMM back ends and attention kernels of the 4B decode step
#   bash scripts/bench_gpu.sh step-1gpu    # OPD step, 1.7B student + 4B teacher, 16 x 4 x 2048, sampled and full
#   bash scripts/bench_gpu.sh step-2gpu    # OPD step, 4B student + 8B teacher on two GPUs (FSDP), sampled and full
#   bash scripts/bench_gpu.sh scaling-N    # weak scaling: 16 x 4 per GPU on N GPUs (N = 2, 4, 8; one host)
# On a machine without network, carry the wheels of hydra-core, hydra-joblib-launcher, omegaconf,
# antlr4-python3-runtime, datasets, dill and multiprocess in .whl/ (the device tool's README shows how); they are installed here.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}  # the KV cache, the teacher and the update
# each peak at their own layout (60+ GB on one H100): growable segments let the allocator reuse that memory
out=${OUT:-results/bench}
if [ -d .whl ] && ! python3 -c "import hydra, datasets" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD
bench() { python3 -m suite.bench "$@"; }
common="task=dapo_math task.source=local trainer=tutorial trainer.device=cuda trainer.num_rollout=3"
# One H100 holds the 1.7B student's activations beside the 4B teacher: no recomputation, and the LM head in chunks
# of 4,096 positions (a quarter of the float32 weight-gradient accumulations; results/bench/NOTES.md, v4)
one_gpu="student=qwen3_1_7b_shape teacher=qwen3_4b_shape trainer.activation_checkpointing=false trainer.lm_head_chunk=4096 trainer.num_rollout=4"
case "${1:-}" in
  env)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, transformers, datasets, hydra; print(torch.__version__, transformers.__version__, datasets.__version__, hydra.__version__, torch.cuda.device_count())"
    python3 -m pytest -q -p no:cacheprovider tests/test_lm_head.py 2>&1 | tail -2 ;;
  rollout-a)
    bench rollout --device cuda --models qwen3-1.7b,qwen3-4b --new-tokens 256 --engines generate,static --repeats 2 --out "$out"
    cp "$out/rollout-cuda.json" "$out/rollout-cuda-256.json" ;;
  rollout-b)
    bench rollout --device cuda --models qwen3-4b,qwen3-1.7b --new-tokens 2048 --engines static,generate --repeats 1 --out "$out"
    cp "$out/rollout-cuda.json" "$out/rollout-cuda-2048.json" ;;
  step-1gpu)  # OPD step on one GPU ($one_gpu), both estimators; first the GPU-only LM-head test
    python3 -m pytest -q -p no:cacheprovider tests/test_lm_head.py -k cuda
    for est in sampled full; do
      bench opd_step --steps 3 --out "$out" $common $one_gpu trainer.opd_estimator=$est
    done ;;
  final-1gpu)  # the engine at 256 (generate timed three times) and 4B at 2048 (static only: generate would take minutes)
    bench rollout --device cuda --models qwen3-1.7b,qwen3-4b --new-tokens 256 --engines generate,static --repeats 3 --out "$out"
    cp "$out/rollout-cuda.json" "$out/rollout-cuda-256.json"
    bench rollout --device cuda --models qwen3-4b --new-tokens 2048 --engines static --repeats 1 --out "$out"
    cp "$out/rollout-cuda.json" "$out/rollout-cuda-4b-2048-static.json" ;;
  attention-1gpu)  # decode attention: SDPA vs two matmuls, against generate, 256 tokens
    bench rollout --device cuda --models qwen3-4b,qwen3-1.7b --new-tokens 256 --engines generate,static,static-matmul \
      --repeats 3 --out "$out"
    cp "$out/rollout-cuda.json" "$out/rollout-cuda-256-attention.json" ;;
  long-1gpu)  # both engines at 2048 new tokens, one model a call (${2:-qwen3-4b}); generate takes minutes a run there
    # (4B on an H200, run after final-1gpu in one call: not finished inside the 10-minute limit)
    bench rollout --device cuda --models "${2:-qwen3-4b}" --new-tokens 2048 --engines static,generate --repeats 1 --out "$out"
    cp "$out/rollout-cuda.json" "$out/rollout-cuda-${2:-qwen3-4b}-2048.json" ;;
  kernels-1gpu)  # GEMM back ends and attention kernels of the 4B decode step; the engine with cuBLAS and cuBLASLt (4B, 256)
    python3 scripts/bench_decode_kernels.py --out "$out"
    bench rollout --device cuda --models qwen3-4b --new-tokens 256 --engines generate,static,static-cublaslt --repeats 3 --profile --out "$out"
    cp "$out/rollout-cuda.json" "$out/rollout-cuda-4b-256-blas.json" ;;
  profile-1gpu)  # kernels of one captured decode step (4B, 256 new tokens) and of one OPD step (as step-1gpu)
    bench rollout --device cuda --models qwen3-4b --new-tokens 256 --engines static --repeats 1 --profile --out "$out"
    cp "$out/rollout-cuda.json" "$out/rollout-cuda-4b-256-profile.json"
    bench opd_step --steps 1 --warmup 1 --profile --out "$out" $common $one_gpu trainer.opd_estimator=sampled ;;
  step-2gpu)
    for est in sampled full; do
      torchrun --standalone --nproc_per_node 2 -m suite.bench opd_step --out "$out" $common \
        student=qwen3_4b_shape teacher=qwen3_8b_shape trainer.opd_estimator=$est trainer.distributed=fsdp trainer.num_gpus=2
    done ;;
  scaling-*)  # weak scaling (issue 14): 16 prompts x 4 samples per GPU, 4B student + 8B teacher, N = the suffix
    n=${1#scaling-}
    torchrun --standalone --nproc_per_node "$n" -m suite.bench opd_step --steps "${STEPS:-2}" --out "$out" $common \
      student=qwen3_4b_shape teacher=qwen3_8b_shape trainer.opd_estimator=sampled trainer.distributed=fsdp \
      trainer.num_gpus="$n" trainer.rollout_batch_size=$((16 * n)) trainer.global_batch_size=$((64 * n))
    for f in "$out"/opd_step-qwen3-4b-shape-qwen3-8b-shape-sampled-"$n"gpu.json; do cp "$f" "${f%.json}-weak.json"; done ;;
  *) echo "usage: bash scripts/bench_gpu.sh {env,rollout-a,rollout-b,step-1gpu,step-2gpu,final-1gpu,long-1gpu [MODEL],attention-1gpu,kernels-1gpu,profile-1gpu,scaling-N}"
     exit 2 ;;
esac
