"""Shared fixtures: the real models (loaded once per session) and hypothesis profiles.

Profiles: ``ci`` (default; the whole suite fits CI's budget on 2 cores) and ``deep``
(``HYPOTHESIS_PROFILE=deep pytest``: many more examples, for a long local run).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "deep", max_examples=2000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Evaluated prompt prefixes go to a directory of this run's own (subprocesses inherit it), not to
# the user's cache: tests neither depend on nor leave files from other runs.
if "EMOGRAM_PROMPT_CACHE" not in os.environ:
    _prompts = tempfile.mkdtemp(prefix="emogram-prompts-")
    os.environ["EMOGRAM_PROMPT_CACHE"] = _prompts
    atexit.register(shutil.rmtree, _prompts, True)


@pytest.fixture(scope="session")
def gemma():
    from emogram.backend import models
    return models.load("gemma3-270m")


@pytest.fixture(scope="session")
def smol():
    from emogram.backend import models
    return models.load("smollm2-135m")


@pytest.fixture(scope="session")
def gemma_engine(gemma):
    from emogram.api import _engine_for
    return _engine_for(gemma)


@pytest.fixture(scope="session")
def smol_engine(smol):
    from emogram.api import _engine_for
    return _engine_for(smol)
