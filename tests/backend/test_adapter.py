"""The LoRA adapter in the product: on by default for the default model, off with ``adapter=False``,
a user's own with ``adapter=PATH``; checked before llama.cpp reads it; named in every output."""

from __future__ import annotations

import json
import shutil

import pytest

import emogram
from emogram.backend import models
from emogram.backend.adapter import read
from emogram.backend.prompt_cache import for_model
from emogram.errors import InputError, InputTypeError, ModelError
from emogram.knowledge import prompts

SHIPPED = models.PRESETS["gemma3-270m"].adapter_path()


def test_the_default_model_ships_an_adapter_within_20_mb():
    adapter = read(SHIPPED)
    assert adapter.architecture == "gemma3" and adapter.size <= 20e6
    assert adapter.prompt == prompts.TOPIC_PROMPT  # what it was trained with, in its metadata


def test_on_by_default_off_with_false(gemma):
    on = emogram.explain("how a kettle boils water", seed=3)
    off = emogram.explain("how a kettle boils water", seed=3, adapter=False)
    assert on.adapter == "gemma3-270m-explain" and off.adapter == ""
    assert models.load("gemma3-270m", adapter=True) is models.load("gemma3-270m")
    assert models.load("gemma3-270m", adapter=False) is not models.load("gemma3-270m")
    assert json.loads(on.to_json())["adapter"] == "gemma3-270m-explain"
    assert "adapter" not in json.loads(off.to_json())


def test_a_users_adapter_by_path(tmp_path, gemma):
    mine = tmp_path / "mine.gguf"
    shutil.copy(SHIPPED, mine)
    e = emogram.explain("how a kettle boils water", seed=3, adapter=mine)
    assert e.adapter == "mine"
    assert e.text == emogram.explain("how a kettle boils water", seed=3).text  # the same weights


def test_the_prompt_changes_with_the_adapter(gemma):
    with_adapter = prompts.build_gloss(models.load("gemma3-270m"), "tea")
    without = prompts.build_gloss(models.load("gemma3-270m", adapter=False), "tea")
    assert with_adapter.text == "Topic: tea\n" and with_adapter.parts() == ("", "Topic:", " tea", "\n")
    assert without.text.startswith(prompts.GLOSS_INSTRUCTION) and without.text.endswith("\nTopic: tea\n")


def test_the_prompt_cache_tells_them_apart(gemma):
    tokens = [2, 3, 4]
    a = for_model(models.load("gemma3-270m")).file_for(tokens)
    b = for_model(models.load("gemma3-270m", adapter=False)).file_for(tokens)
    assert a != b


@pytest.mark.parametrize("value, error", [(3, InputTypeError), (b"x.gguf", InputTypeError),
                                          ("", InputError), ("  ", InputError)])
def test_bad_adapter_values_are_typed_errors(value, error):
    with pytest.raises(error):
        emogram.explain("tea", adapter=value)


def test_a_missing_adapter_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        emogram.explain("tea", adapter=tmp_path / "nope.gguf")


def test_no_adapter_ships_for_smollm2(smol):
    with pytest.raises(ModelError, match="ships no adapter"):
        emogram.explain("tea", model="smollm2-135m", adapter=True)
    assert emogram.explain("tea", model="smollm2-135m", seed=1).adapter == ""  # None: none there


def test_a_truncated_adapter_is_refused(tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(SHIPPED.read_bytes()[: SHIPPED.stat().st_size // 2])
    with pytest.raises(ModelError, match="truncated|ends"):
        models.load("gemma3-270m", adapter=cut)
