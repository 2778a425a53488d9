"""Corpus -> LoRA adapter: teach a GGUF model to name an explanation's stages, and export the
adapter as a GGUF LoRA file that llama.cpp applies on top of the quantized model.

    python -m emogram.training.train                                   # the shipped adapter
    python -m emogram.training.train --corpus mine.jsonl --out mine.gguf --model path/to/base.gguf

Needs the ``train`` extra (``pip install "emogram[train]"``: torch, transformers, peft, gguf).

* **The base** is the GGUF file itself, dequantized by transformers (``gguf_file=``), so the adapter
  is trained on the very weights llama.cpp will run (Q4_K_M rounded), not on a cousin checkpoint.
* **The text** is tokenized by llama.cpp's tokenizer (the same tokens the engine decodes), in the
  prompt the engine uses with an adapter (``knowledge.prompts.TOPIC_PROMPT``): ``Topic: X\\n`` then the
  glossed answer and a newline. The loss is on the answer only.
* **Seeded and resumable:** the order of examples is drawn from the seed, epoch by epoch; a
  checkpoint (adapter, optimizer, scheduler, step) is written every ``--save-every`` steps and at
  the end, and ``--resume`` carries on from the last one with the same order.
* **Where:** CUDA when torch sees a GPU, else the CPU, with bfloat16 autocast on a GPU and float32 on the CPU
  (``--precision``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

from ..knowledge.prompts import TOPIC_PROMPT, build_adapted, tokens as prompt_tokens
from . import corpus as corpus_module
from .export import write_gguf_lora

DEFAULT_CORPUS = corpus_module.CORPUS_DIR / "corpus.jsonl"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "adapters" / "gemma3-270m-explain.gguf"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m emogram.training.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="JSONL corpus (default: %(default)s)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="GGUF LoRA to write (default: %(default)s)")
    p.add_argument("--model", default=None, help="base GGUF: preset or path (default: the default model)")
    p.add_argument("--checkpoints", type=Path, default=None,
                   help="checkpoint folder (default: ~/.cache/emogram/training/OUT-NAME)")
    p.add_argument("--resume", action="store_true", help="carry on from the last checkpoint")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--batch", type=int, default=16, help="sequences per step")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=32.0)
    p.add_argument("--dropout", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (a smoke run)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N corpus lines")
    p.add_argument("--sample", type=int, default=None, help="use N corpus lines drawn by the seed")
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto: bf16 autocast on a GPU, fp32 on the CPU")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the usable cores)")
    p.add_argument("--bank-context", action="store_true",
                   help="retrieval-augmented: each example's prompt holds its neighbours from the shipped "
                        "bank, as answers read them (mostly not the example itself, sometimes itself)")
    p.add_argument("--self-share", type=float, default=0.2,
                   help="with --bank-context: the share of examples whose own entry is among what they read")
    p.add_argument("--init", type=Path, default=None, help="start from this GGUF LoRA adapter's weights")
    return p.parse_args(argv)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def encode(entries, model, contexts=None) -> list[tuple[list[int], int]]:
    """(tokens, where the answer starts) for each entry: the prompt exactly as the engine tokenizes
    it (``prompts.build_adapted``, with the entry's bank context when given), then the answer and
    the newline that ends it."""
    out = []
    for k, e in enumerate(entries):
        context = contexts[k] if contexts is not None else ()
        shared, own = prompt_tokens(model, build_adapted(model, e.topic, TOPIC_PROMPT, context))
        prompt = list(shared) + own
        out.append((prompt + model.tokenize(e.answer + "\n"), len(prompt)))
    return out


def bank_contexts(entries, seed: int, self_share: float) -> list[tuple[tuple[str, str], ...]]:
    """What each example reads, as an answer to its topic would (``decoding.recall``): its related
    neighbours in the shipped bank, the closest last. An example's own entry (or a twin of it) is
    left out, except for a ``self_share`` of them (seeded), where it is read as if retrieved: the
    adapter learns both to reason from neighbours and to keep to an entry that fits."""
    import numpy as np
    from ..decoding.topic_parts import explains
    from ..decoding.recall import NEIGHBOURS, _plain_topic
    from ..knowledge.bank_search import search_for
    search = search_for(())
    rng = np.random.default_rng([seed, 29])
    out = []
    for e in entries:
        own = rng.random() < self_share
        hits = [h for h in search.find(e.topic, NEIGHBOURS + 2, phrases=not explains(e.topic)) if h.related]
        others = [h for h in hits if h.entry.topic != e.topic and h.entry.answer != e.answer][:NEIGHBOURS]
        read = [(h.entry.topic, h.entry.answer) for h in others]  # best first
        if own:  # the entry itself ranks first, as retrieval would rank it
            read = [(e.topic, e.answer)] + read[:NEIGHBOURS - 1]
        out.append(tuple((_plain_topic(t), a) for t, a in reversed(read)))  # the closest last
    return out


def order(n: int, epoch: int, seed: int) -> list[int]:
    import numpy as np
    return np.random.default_rng([seed, epoch]).permutation(n).tolist()


def batches(lengths: list[int], batch: int, epochs: float, seed: int) -> list[list[int]]:
    """Every step's example indices, fixed by the seed (so a resumed run takes the same path).
    Each epoch is a seeded permutation, cut into pools of 8 batches whose examples are sorted by
    length before they are batched (less padding), and the batches are then shuffled."""
    import numpy as np
    n = len(lengths)
    steps_per_epoch = math.ceil(n / batch)
    total = max(1, round(steps_per_epoch * epochs))
    out: list[list[int]] = []
    epoch = 0
    while len(out) < total:
        perm = order(n, epoch, seed)
        these = []
        for p in range(0, n, batch * 8):
            pool = sorted(perm[p:p + batch * 8], key=lambda i: lengths[i])
            these += [pool[i:i + batch] for i in range(0, len(pool), batch)]
        shuffle = np.random.default_rng([seed, epoch, 1]).permutation(len(these))
        out += [these[i] for i in shuffle]
        epoch += 1
    return out[:total]


def collate(examples, pad: int):
    import torch
    width = max(len(t) for t, _ in examples)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (tokens, start) in enumerate(examples):
        ids[row, :len(tokens)] = torch.tensor(tokens)
        labels[row, start:len(tokens)] = torch.tensor(tokens[start:])
        mask[row, :len(tokens)] = 1
    return ids, labels, mask


def answer_loss(model, ids, labels, mask):
    """The causal LM loss on the answer tokens, with the output head applied to those rows only:
    Gemma's head has 262,144 rows, and the prompt's rows need none (a quarter less work a step).
    The same number as transformers' own loss (``tests/training/test_train.py`` checks it)."""
    import torch
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = inner.model(input_ids=ids, attention_mask=mask).last_hidden_state
    wanted = labels[:, 1:] != -100
    logits = inner.lm_head(hidden[:, :-1][wanted])
    cap = getattr(inner.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return torch.nn.functional.cross_entropy(logits.float(), labels[:, 1:][wanted])


def load_base(gguf_path: Path, device: str):
    """The GGUF model as a transformers model in float32 (its quantized weights dequantized)."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                 dtype=torch.float32)
    return model.to(device)


def load_gguf_lora(model, path: Path) -> None:
    """Set the peft model's LoRA weights from a GGUF adapter (``export.write_gguf_lora``'s inverse)."""
    import gguf
    import torch
    from .export import gguf_name
    tensors = {t.name: t for t in gguf.GGUFReader(str(path)).tensors}
    state = {}
    for name, value in model.state_dict().items():
        if "lora_" in name:
            t = tensors.get(gguf_name(name))
            if t is None:
                raise ValueError(f"{path.name} has no {gguf_name(name)}")
            data = torch.from_numpy(t.data.astype("float32").reshape(value.shape))
            state[name] = data
    model.load_state_dict(state, strict=False)


def lora_state(model) -> dict:
    return {k: v.detach().float().cpu() for k, v in model.state_dict().items() if "lora_" in k}


class Run:
    """One training run's inputs: the examples as tokens, the step plan, the settings."""

    def __init__(self, args: argparse.Namespace) -> None:
        from ..backend.llama import Model
        from ..backend.models import cache_dir, resolve
        self.args = args
        self.entries = corpus_module.load(args.corpus)[: args.limit]
        if args.sample is not None and args.sample < len(self.entries):
            import numpy as np
            keep = sorted(np.random.default_rng([args.seed, 7]).choice(len(self.entries), args.sample, replace=False))
            self.entries = [self.entries[i] for i in keep]
        problems = [f"{e.topic!r}: {p}" for e in self.entries for p in corpus_module.check(e)]
        if problems:
            raise ValueError(f"{len(problems)} corpus problems, e.g. " + "; ".join(problems[:5]))
        self.gguf = resolve(args.model).path
        vocab = Model(self.gguf, device="cpu")  # llama.cpp's tokenizer: the engine's own tokens
        contexts = bank_contexts(self.entries, args.seed, args.self_share) if args.bank_context else None
        try:
            self.data = encode(self.entries, vocab, contexts)
            self.pad = vocab.eos if vocab.eos is not None else 0
        finally:
            vocab.close()
        self.plan = batches([len(t) for t, _ in self.data], args.batch, args.epochs, args.seed)
        self.plan_id = _plan_id(self.plan, args)
        self.checkpoints = args.checkpoints or cache_dir() / "training" / args.out.stem


def fit(run: Run, base, *, log=print):
    """Train a LoRA on ``base`` (a transformers model) along ``run.plan``; returns the peft model and
    the loss of every step taken in this call. Resumes from ``run.checkpoints`` with ``--resume``."""
    import torch
    from peft import LoraConfig, get_peft_model

    args = run.args
    device = next(base.parameters()).device.type
    # bfloat16 autocast on a GPU; on the CPU float32: autocast there took 15x as long per step on
    # this AVX-512-BF16 CPU (torch 2.13: 60 s against 4 s for 16 sequences of 36 tokens)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device == "cuda"
                                        and torch.cuda.is_bf16_supported())
    torch.manual_seed(args.seed)
    config = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=args.dropout,
                        target_modules=TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(base, config)
    if args.init is not None:
        load_gguf_lora(model, args.init)
        log(f"train: started from {args.init.name}")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    total = len(run.plan)
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / total) ** 0.5)
    step = 0
    saved = run.checkpoints / "last.pt"
    if args.resume and saved.is_file():
        state = torch.load(saved, map_location=device, weights_only=False)
        if state["plan"] != run.plan_id:
            raise ValueError(f"the checkpoint {saved} was made with other data or settings; "
                             "start again without --resume")
        model.load_state_dict(state["lora"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if "rng" in state:
            torch.set_rng_state(state["rng"])
        step = state["step"]
        log(f"train: resumed at step {step}")
    model.train()
    last = min(args.max_steps if args.max_steps is not None else total, total)
    losses: list[float] = []
    ema = None
    loop_start, resumed_at, tokens_seen = time.perf_counter(), step, 0
    while step < last:
        ids, labels, mask = (t.to(device) for t in collate([run.data[i] for i in run.plan[step]], run.pad))
        tokens_seen += int(mask.sum())
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = answer_loss(model, ids, labels, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        losses.append(float(loss.detach()))
        ema = losses[-1] if ema is None else 0.9 * ema + 0.1 * losses[-1]
        if step % 10 == 0 or step == last:
            per = (time.perf_counter() - loop_start) / (step - resumed_at)
            rate = tokens_seen / (time.perf_counter() - loop_start)
            log(f"train: step {step}/{total} loss {losses[-1]:.3f} (avg {ema:.3f}) "
                f"lr {schedule.get_last_lr()[0]:.2e} {per:.2f} s/step, {rate:.0f} tokens/s, "
                f"ETA {per * (last - step) / 60:.0f} min")
        if step % args.save_every == 0 or step == last:
            _save(run.checkpoints, model, optimizer, schedule, step, run.plan_id)
    model.eval()
    return model, losses, step


def export(run: Run, model, steps: int) -> Path:
    """The trained LoRA as a GGUF adapter at ``run.args.out``, with what made it in its metadata."""
    args = run.args
    metadata = {"corpus_sha256": sha256_file(args.corpus), "corpus_lines": str(len(run.entries)),
                "base": run.gguf.name, "base_sha256": _base_hash(run.gguf), "prompt": TOPIC_PROMPT,
                "bank_context": "yes" if args.bank_context else "no",
                "steps": str(steps), "epochs": str(args.epochs), "batch": str(args.batch),
                "rank": str(args.rank), "seed": str(args.seed), "lr": str(args.lr)}
    return write_gguf_lora(lora_state(model), args.out, alpha=args.alpha, metadata=metadata)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import torch
        import peft  # noqa: F401
    except ImportError as exc:
        print(f"training needs the train extra: pip install \"emogram[train]\" ({exc})", file=sys.stderr)
        return 2
    started = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        run = Run(args)
    except ValueError as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 1
    print(f"train: {len(run.entries)} examples, {sum(len(t) for t, _ in run.data)} tokens, "
          f"{len(run.plan)} steps of {args.batch}, rank {args.rank}, {device}", flush=True)
    base = load_base(run.gguf, device)
    print(f"train: base {run.gguf.name} loaded in {time.perf_counter() - started:.0f} s", flush=True)
    try:
        model, losses, steps = fit(run, base, log=lambda line: print(line, flush=True))
    except ValueError as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 1
    out = export(run, model, steps)
    head, tail = losses[:10], losses[-10:]
    summary = (f"; loss {sum(head) / len(head):.3f} (first 10 steps) -> {sum(tail) / len(tail):.3f} "
               f"(last 10)") if losses else ""
    print(f"train: wrote {out} ({out.stat().st_size / 1e6:.1f} MB) after {steps} steps{summary}; "
          f"{time.perf_counter() - started:.0f} s in all", flush=True)
    return 0


def _plan_id(plan, args) -> str:
    return hashlib.sha256(json.dumps([plan, args.rank, args.alpha, args.lr, args.seed, args.bank_context,
                                      args.self_share, str(args.init)]).encode()).hexdigest()


def _save(directory: Path, model, optimizer, schedule, step: int, plan_id: str) -> None:
    import torch
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "last.pt.tmp"
    torch.save({"lora": lora_state(model), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "step": step, "plan": plan_id,
                "rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, directory / "last.pt")  # a killed run leaves the previous checkpoint whole


def _base_hash(path: Path) -> str:
    marker = path.with_name(path.name + ".sha256")
    return marker.read_text().strip() if marker.is_file() else sha256_file(path)


if __name__ == "__main__":
    raise SystemExit(main())
