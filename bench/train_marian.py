"""Train a small Marian translation model from scratch on a TSV parallel corpus (source, target), for the benches.

No pretrained translation model installs offline here, so bench_translation.py needs one trained on a real corpus
(gettext_pairs.py's). This is a plain from-scratch run, not a recipe to copy: a shared BPE vocabulary built with
`tokenizers`, a Marian encoder-decoder of --d-model / --layers, AdamW with warm-up and inverse-square-root decay,
label smoothing, length-bucketed batches, and a wall-clock budget. The loop is hand-written rather than
`Seq2SeqTrainer` only because the budget is in minutes, not steps: a 2-core machine's throughput varies by CPU.
The model is saved as safetensors with its tokenizer and a greedy generation config, the folder a user would have.

    python bench/train_marian.py CORPUS_DIR OUT_DIR [--minutes 20] [--threads 2]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import random
import time
from pathlib import Path

import torch


def read_pairs(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return [(row["source"], row["target"]) for row in csv.DictReader(handle, delimiter="\t")]


def build_tokenizer(pairs: list[tuple[str, str]], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.normalizer = normalizers.NFKC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    # opus-mt's layout: </s> = 0, <unk> = 1, <pad> last (the decoder starts from it); CTranslate2's Marian converter
    # relies on it, and it is what users' Marian checkpoints have
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 1, special_tokens=["</s>", "<unk>"])
    backend.train_from_iterator([text for pair in pairs for text in pair], trainer)
    backend.add_special_tokens(["<pad>"])
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=128)


def build_model(vocab: int, pad: int, d_model: int, layers: int, heads: int):
    from transformers import GenerationConfig, MarianConfig, MarianMTModel

    config = MarianConfig(vocab_size=vocab, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
                          encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=4 * d_model,
                          decoder_ffn_dim=4 * d_model, max_position_embeddings=128, pad_token_id=pad, eos_token_id=0,
                          decoder_start_token_id=pad, forced_eos_token_id=0, dropout=0.1, scale_embedding=True)
    model = MarianMTModel(config)
    model.generation_config = GenerationConfig(decoder_start_token_id=pad, eos_token_id=0, pad_token_id=pad,
                                               forced_eos_token_id=0, num_beams=1)
    return model


def batches(pairs: list[tuple[str, str]], tokenizer, tokens_per_batch: int) -> list[tuple[dict, torch.Tensor]]:
    """Length-bucketed batches of about `tokens_per_batch` source tokens, tokenized once."""
    encoded = [(tokenizer(s).input_ids, tokenizer(t).input_ids) for s, t in pairs]
    encoded = [(s[:128], t[:128]) for s, t in encoded]
    encoded.sort(key=lambda st: (len(st[0]), len(st[1])))
    out, start = [], 0
    while start < len(encoded):
        size = max(1, tokens_per_batch // max(1, len(encoded[start][0])))
        chunk = encoded[start:start + size]
        start += size
        width_s, width_t = max(len(s) for s, _ in chunk), max(len(t) for _, t in chunk)
        ids = torch.full((len(chunk), width_s), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full((len(chunk), width_t), -100, dtype=torch.long)
        for i, (s, t) in enumerate(chunk):
            ids[i, :len(s)], mask[i, :len(s)], labels[i, :len(t)] = torch.tensor(s), 1, torch.tensor(t)
        out.append(({"input_ids": ids, "attention_mask": mask}, labels))
    return out


def train(model, data: list, minutes: float, lr: float, warmup: int, smoothing: float) -> dict:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1))))
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100, label_smoothing=smoothing)
    rng = random.Random(0)
    model.train()
    deadline, step, epoch, recent = time.monotonic() + 60 * minutes, 0, 0, []
    while time.monotonic() < deadline:
        order = list(range(len(data)))
        rng.shuffle(order)
        for index in order:
            batch, labels = data[index]
            logits = model(**batch, labels=labels).logits
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            with torch.no_grad():  # opus-mt's <pad> row is zero: its decoder starts from a zero embedding, which
                model.model.shared.weight[model.config.pad_token_id].zero_()  # CTranslate2's converter assumes;
                # the tied output layer would train the row otherwise (padding_idx only stops the input side)
            schedule.step()
            optimizer.zero_grad()
            recent = (recent + [loss.item()])[-200:]
            step += 1
            if step % 200 == 0:
                print(f"step {step} epoch {epoch} loss {sum(recent) / len(recent):.3f}", flush=True)
            if time.monotonic() >= deadline:
                break
        epoch += 1
    model.eval()
    return {"steps": step, "epochs": epoch, "final_loss": sum(recent) / max(1, len(recent))}


def greedy_bleu(model, tokenizer, pairs: list[tuple[str, str]]) -> float:
    import sacrebleu

    hypotheses = []
    with torch.inference_mode():
        for source, _ in pairs:
            ids = model.generate(**tokenizer([source], return_tensors="pt"), num_beams=1, max_new_tokens=128)
            hypotheses.append(tokenizer.decode(ids[0], skip_special_tokens=True))
    return sacrebleu.corpus_bleu(hypotheses, [[t for _, t in pairs]]).score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="folder with train.tsv and eval.tsv")
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--tokens-per-batch", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pairs = read_pairs(args.corpus / "train.tsv")
    tokenizer = build_tokenizer(pairs, args.vocab)
    model = build_model(len(tokenizer), tokenizer.pad_token_id, args.d_model, args.layers, args.heads)
    data = batches(pairs, tokenizer, args.tokens_per_batch)
    print(f"{len(pairs)} pairs, {len(data)} batches, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params",
          flush=True)
    stats = train(model, data, args.minutes, args.lr, args.warmup, smoothing=0.1)
    stats["greedy_bleu_first_200_eval"] = greedy_bleu(model, tokenizer, read_pairs(args.corpus / "eval.tsv")[:200])
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    (args.out / "training.json").write_text(json.dumps({**vars(args), **stats}, default=str, indent=2))
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
