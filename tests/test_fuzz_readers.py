"""The readers' fuzz (``fuzz_readers.py``), on a short budget with a fixed seed: every generated
GGUF file, ollama store, LM Studio and hub-cache layout, server request, cache file and bank file
gives a correct result or an ``EmogramError``, never another exception or a hang past its deadline.

A few seconds per parser; ``EMOGRAM_FUZZ_READERS=N`` sets the examples per parser (default below),
``python bench/fuzz_long.py --examples N`` is the long run, with its memory bound and figures."""

from __future__ import annotations

import os
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings

import fuzz_readers as fz

SCALE = int(os.environ.get("EMOGRAM_FUZZ_READERS", "0"))


def budget(default: int) -> settings:
    return settings(max_examples=SCALE or default, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@budget(300)
@given(fz.gguf_files())
def test_gguf_header_and_metadata(example):
    fz.run_one("gguf", example)


@budget(120)
@given(fz.ollama_stores())
def test_ollama_manifests_and_config_blobs(example):
    fz.run_one("ollama", example)


@budget(100)
@given(fz.folder_stores())
def test_lm_studio_and_hub_cache_layouts(example):
    fz.run_one("folders", example)


@budget(600)
@given(fz.REQUESTS)
def test_request_lines(example):
    fz.run_one("protocol", example)


@pytest.fixture(scope="module")
def live():
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("needs Unix sockets")
    server = fz.LiveServer()
    yield server
    server.close()


@budget(120)
@given(example=fz.LIVE)
def test_requests_to_a_live_server(live, example):
    fz.run_one("live", example, live)
    if example[1] == "whole":  # after whatever came, a good request is still answered
        assert live.good()[-1] == {"exit": 0, "timings": False}


@budget(200)
@given(fz.cache_files())
def test_cache_files(example):
    fz.run_one("caches", example)


@budget(200)
@given(fz.bank_files())
def test_bank_files(example):
    fz.run_one("bank", example)


def test_the_fuzz_sees_a_planted_bug(monkeypatch):
    """Control: with the GGUF reader's nesting limit taken away, the fuzz's check fails (a
    ``RecursionError``, not an ``EmogramError``), as it did on main 8cf7f18."""
    from emogram.backend import gguf
    monkeypatch.setattr(gguf, "MAX_NESTING", 10**9)
    header = b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + fz._string(b"k") + struct.pack("<I", 9)
    with pytest.raises(RecursionError):
        fz.run_one("gguf", (header + fz._nested(5000)[1], "file"))
