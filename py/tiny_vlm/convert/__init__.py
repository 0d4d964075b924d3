"""Converters from other checkpoints to tiny-vlm tensor names (never imported by the runtime).

- `fastvit.from_timm_fastvit`: a reparameterized timm FastViT / MCi state_dict -> `vision.*`
- `qwen2.from_hf_qwen2`: a Hugging Face Qwen2ForCausalLM state_dict -> `lm.*`

Both accept NumPy arrays or torch tensors as values and return float32 NumPy arrays.
"""
