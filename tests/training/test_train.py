"""Corpus -> adapter, end to end on the real default model: a few steps on a tiny corpus make the
loss fall, a resumed run takes the same path, and the exported GGUF LoRA, applied by llama.cpp
through emogram, moves the logits as transformers + peft say it should (a broken export fails)."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from emogram.backend.llama import Model
from emogram.backend.models import resolve
from emogram.errors import ModelError
from emogram.training import corpus, train
from emogram.training.export import write_gguf_lora

PROBE = "Topic: how a kettle boils water\nelectricity: ⚡ -> heating coil:"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Eight lines of the corpus, a run of 12 steps of 4 with a high learning rate."""
    folder = tmp_path_factory.mktemp("train")
    lines = [e for e in corpus.load(corpus.CORPUS_DIR / "corpus.jsonl") if e.kind == "explain"][:8]
    (folder / "tiny.jsonl").write_text("".join(corpus.dumps(e) + "\n" for e in lines), encoding="utf-8")

    def args(name: str, *extra: str):
        return train.parse_args(["--corpus", str(folder / "tiny.jsonl"), "--out", str(folder / f"{name}.gguf"),
                                 "--checkpoints", str(folder / name), "--batch", "4", "--epochs", "6",
                                 "--lr", "2e-3", "--rank", "4", "--alpha", "8", "--dropout", "0.1",
                                 "--save-every", "2", *extra])
    base = train.load_base(resolve().path, "cpu")
    return folder, args, base


def _fit(run, base):
    model, losses, steps = train.fit(run, base, log=lambda line: None)
    return model, losses, steps


@pytest.fixture(scope="module")
def trained(tiny):
    folder, args, base = tiny
    run = train.Run(args("main"))
    model, losses, steps = _fit(run, base)
    path = train.export(run, model, steps)
    ids = torch.tensor([_probe_tokens()])
    with torch.no_grad():
        with_lora = model(input_ids=ids).logits[0, -1].numpy().copy()
        with model.disable_adapter():
            without = model(input_ids=ids).logits[0, -1].numpy().copy()
    state = train.lora_state(model)
    model.unload()  # the base without its LoRA layers, for the next fit
    return {"run": run, "losses": losses, "steps": steps, "path": path, "hf_delta": with_lora - without,
            "state": state}


def _probe_tokens() -> list[int]:
    m = Model(resolve().path, device="cpu")
    try:
        return ([m.bos] if m.add_bos else []) + m.tokenize(PROBE)
    finally:
        m.close()


def _llama_delta(adapter_path) -> np.ndarray:
    """llama.cpp's last-row logits on the probe with the adapter, minus without it."""
    out = []
    for adapter in (adapter_path, None):
        m = Model(resolve().path, device="cpu", adapter=adapter)
        try:
            tokens = ([m.bos] if m.add_bos else []) + m.tokenize(PROBE)
            ctx = m.new_context(n_seq=1, n_ctx=128)
            ctx.decode(tokens, range(len(tokens)), [0] * len(tokens),
                       [i == len(tokens) - 1 for i in range(len(tokens))], full_logits=True)
            out.append(np.array(ctx.logits(0), dtype=np.float64))
            ctx.close()
        finally:
            m.close()
    return out[0] - out[1]


def agrees(llama_delta: np.ndarray, hf_delta: np.ndarray) -> bool:
    """The two deltas point the same way and have about the same size (the base weights differ
    only by llama.cpp's Q4_K_M kernels against their dequantized copy)."""
    ratio = np.linalg.norm(llama_delta) / np.linalg.norm(hf_delta)
    return bool(np.corrcoef(llama_delta, hf_delta)[0, 1] > 0.95 and 0.8 < ratio < 1.25)


def test_the_loss_falls(trained):
    losses = trained["losses"]
    assert trained["steps"] == len(losses) == 12
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3]), losses


def test_the_answer_loss_is_transformers_loss(tiny, trained):
    """Training applies the output head to the answer rows only; the loss is the same number."""
    folder, args, base = tiny
    run = trained["run"]
    ids, labels, mask = train.collate([run.data[i] for i in range(4)], run.pad)
    with torch.no_grad():
        mine = train.answer_loss(base, ids, labels, mask)
        theirs = base(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert abs(float(mine) - float(theirs)) < 1e-4


def test_a_resumed_run_takes_the_same_path(tiny, trained):
    """Stop after 4 steps, resume to 8: the same LoRA weights as 8 steps in one go."""
    folder, args, base = tiny
    first = train.Run(args("resumed", "--max-steps", "4"))
    model, _, _ = _fit(first, base)
    model.unload()
    again = train.Run(args("resumed", "--max-steps", "8", "--resume"))
    model, losses, steps = _fit(again, base)
    resumed = train.lora_state(model)
    model.unload()
    assert steps == 8 and len(losses) == 4
    straight_run = train.Run(args("straight", "--max-steps", "8"))
    model, _, _ = _fit(straight_run, base)
    straight = train.lora_state(model)
    model.unload()
    assert resumed.keys() == straight.keys()
    assert all(torch.allclose(resumed[k], straight[k], atol=1e-6) for k in straight)


def test_the_export_loads_and_moves_the_logits_as_peft_does(trained):
    delta = _llama_delta(trained["path"])
    assert np.abs(delta).max() > 0.5  # it changes the logits
    assert agrees(delta, trained["hf_delta"])


def test_the_metadata_says_what_made_it(trained):
    from emogram.backend.adapter import read
    adapter = read(trained["path"])
    assert adapter.prompt == train.TOPIC_PROMPT
    assert adapter.metadata["emogram.steps"] == "12" and adapter.rank == 4
    assert adapter.metadata["emogram.corpus_lines"] == "8"


def test_a_broken_export_fails(trained, tmp_path):
    """The check above catches a wrong scale (alpha) and a swapped pair; llama.cpp never sees a
    file whose shapes do not fit (a typed error instead)."""
    state = trained["state"]
    wrong_scale = write_gguf_lora(state, tmp_path / "scale.gguf", alpha=8 * 3)
    assert not agrees(_llama_delta(wrong_scale), trained["hf_delta"])
    swapped = {k.replace("lora_A", "lora_X").replace("lora_B", "lora_A").replace("lora_X", "lora_B"):
               v.T.contiguous() for k, v in state.items()}
    swapped_path = write_gguf_lora(swapped, tmp_path / "swapped.gguf", alpha=8)
    try:
        delta = _llama_delta(swapped_path)
    except ModelError:
        return  # refused: fine
    assert not agrees(delta, trained["hf_delta"])


def test_an_adapter_for_another_model_is_refused(trained):
    smol = resolve("smollm2-135m").path
    with pytest.raises(ModelError, match="gemma3"):
        Model(smol, device="cpu", adapter=trained["path"])


@pytest.mark.parametrize("content", [b"not a gguf file", b""])
def test_a_file_that_is_not_an_adapter_is_refused(tmp_path, content):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(ModelError, match="adapter"):
        Model(resolve().path, device="cpu", adapter=bad)


def test_a_model_file_is_not_an_adapter():
    with pytest.raises(ModelError, match="not a LoRA adapter"):
        Model(resolve().path, device="cpu", adapter=resolve().path)
