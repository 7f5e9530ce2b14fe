# The toy student (artifacts/toy/student) in Megatron's terms, as slime's scripts/models/*.sh define MODEL_ARGS.
MODEL_ARGS=(
   --swiglu
   --num-layers 2
   --hidden-size 64
   --ffn-hidden-size 256
   --num-attention-heads 2
   --group-query-attention
   --num-query-groups 1
   --use-rotary-position-embeddings
   --disable-bias-linear
   --normalization "RMSNorm"
   --norm-epsilon 1e-6
   --rotary-base 10000
   --vocab-size 445
   --kv-channels 32
   --qk-layernorm
)
