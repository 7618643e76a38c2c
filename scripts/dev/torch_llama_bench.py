#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""PyTorch F16 beside polyinfer on the GPU: a random-weight Llama of a real shape (transformers'
LlamaForCausalLM, sdpa attention, its own KV cache), prompt processing and greedy decode.

    python3 scripts/dev/torch_llama_bench.py --shape llama-3-8b [--prompt 512] [--gen 128]
                                              [--batches 1,8,32,128] [--reps 3]

Prints one JSON line per measurement (median of --reps). A development aid for the GPU
comparison in docs/benchmarks.md; the library never needs Python.
"""
import argparse
import json
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

SHAPES = {
    # llama-3-8b as polyinfer synth writes it (the Meta-Llama-3-8B config).
    "llama-3-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                       num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                       rope_theta=500000.0, max_position_embeddings=8192, rms_norm_eps=1e-5),
}


def timed(fn, reps):
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="llama-3-8b", choices=sorted(SHAPES))
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--gen", type=int, default=128)
    parser.add_argument("--batches", default="1,8,32,128")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    torch.manual_seed(0)
    config = LlamaConfig(**SHAPES[args.shape], torch_dtype=torch.float16)
    config._attn_implementation = "sdpa"
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).half().eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    vocab = config.vocab_size

    with torch.inference_mode():
        ids = torch.randint(0, vocab, (1, args.prompt), device="cuda")
        model(ids)  # warm-up
        prompt_s = timed(lambda: model(ids), args.reps)
        print(json.dumps({"framework": "pytorch", "torch": torch.__version__, "dtype": "f16",
                          "shape": args.shape, "weight_bytes": weight_bytes,
                          "prompt_tokens": args.prompt,
                          "prompt_tokens_per_s": args.prompt / prompt_s}), flush=True)
        for batch in [int(b) for b in args.batches.split(",")]:
            prompt = torch.randint(0, vocab, (batch, 128), device="cuda")

            def generate():
                model.generate(prompt, max_new_tokens=args.gen, min_new_tokens=args.gen,
                               do_sample=False, pad_token_id=0)

            generate()  # warm-up
            total = timed(generate, args.reps)
            prefill = timed(lambda: model(prompt), args.reps)
            decode_s = max(total - prefill, 1e-9)
            print(json.dumps({"framework": "pytorch", "dtype": "f16", "shape": args.shape,
                              "batch": batch, "gen_tokens": args.gen,
                              "decode_tokens_per_s": batch * args.gen / decode_s}), flush=True)


if __name__ == "__main__":
    main()
