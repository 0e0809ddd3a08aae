"""Causal language models: KV-cache ONNX export, int8/int4 variants, perplexity/agreement/speed validation."""
