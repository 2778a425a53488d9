"""ollama's store, as its source defines it (``ollama/ollama`` at fb30760, 2026-08-21), read in place:

* the root: ``envconfig/config.go`` ``Models()``: ``$OLLAMA_MODELS``, else ``~/.ollama/models``; the
  Linux installer runs the server as its own user with its store in
  ``/usr/share/ollama/.ollama/models`` (``scripts/install.sh``, ``docs/faq.mdx``), read too when
  ``$OLLAMA_MODELS`` is not set;
* a name: ``types/model/name.go`` (``ParseNameBare``, ``Filepath``): ``[HOST/][NAMESPACE/]MODEL[:TAG]``
  with the defaults ``registry.ollama.ai``, ``library`` and ``latest``; its manifest is the file
  ``manifests/HOST/NAMESPACE/MODEL/TAG``, each level compared case-insensitively as ollama does;
* the manifest: ``manifest/manifest.go`` (``Manifest``: ``schemaVersion``, ``mediaType``, ``config``,
  ``layers``) and ``manifest/layer.go`` (``Layer``: ``mediaType``, ``digest``, ``size``); the weights are
  the one layer of media type ``application/vnd.ollama.image.model`` (``server/images.go``,
  ``GetModel``); a config whose ``model_format`` is neither empty nor ``gguf`` is not GGUF
  (``types/model/config.go``, ``isGGUF``);
* a blob: ``manifest/paths.go`` ``BlobsPath``: ``blobs/sha256-HEX`` for the digest ``sha256:HEX``
  (older stores named it ``sha256:HEX``; ``server/fixblobs.go`` renames those).

A blob's size is checked here, its sha256 by ``stores.verify_digest`` (once per file).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from ..errors import BlobMissingError, DigestMismatchError, ModelError, ModelStoreError, NotGGUFError
from ..files import load_json, read_regular
from .store_places import DIGEST, Found, broken, head, inside, not_found, ollama_roots

OLLAMA_HOST, OLLAMA_NAMESPACE, OLLAMA_TAG = "registry.ollama.ai", "library", "latest"
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"


def parse_ollama_name(text: str) -> tuple[str, str, str, str]:
    """``NAME[:TAG]`` -> (host, namespace, model, tag), as ollama's ``ParseNameBare`` cuts it: the tag
    after the last ``:`` that follows the last ``/``, the model after the last ``/``, the namespace
    before it, the host before that; missing parts take ollama's defaults."""
    rest, tag = text.strip(), OLLAMA_TAG
    for scheme in ("https://", "http://"):
        if rest.startswith(scheme):
            rest = rest[len(scheme):]
    colon, slash = rest.rfind(":"), rest.rfind("/")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
    parts = rest.split("/")
    model = parts[-1]
    namespace = parts[-2] if len(parts) >= 2 else OLLAMA_NAMESPACE
    host = "/".join(parts[:-2]) if len(parts) >= 3 else OLLAMA_HOST
    if not all((host, namespace, model, tag)):
        raise ModelError(f"ollama model names look like NAME[:TAG] or NAMESPACE/NAME[:TAG] "
                         f"(e.g. ollama:qwen2.5:7b), not ollama:{_shown(text)}")
    for kind, part in (("host", host), ("namespace", namespace), ("model", model), ("tag", tag)):
        if not (_HOST if kind == "host" else _PART).match(part):  # ollama's isValidPart, a little wider
            raise ModelError(f"ollama:{_shown(text)} is not an ollama model name: its {kind} {_shown(part)} "
                             "must start with a letter, digit or _ and hold only those, '.' and '-' "
                             "(so a name never leaves the store)")
    return host, namespace, model, tag


# Each part of a name, as ollama's ``types/model/name.go`` (``isValidPart``) allows it, except that
# a namespace may hold '.' here: a name is one folder per part, and none of them can be "." or
# "..", hold a separator or a NUL byte, or so climb out of the store.
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,349}\Z")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,349}\Z")
MAX_MANIFEST = 1 << 20  # bytes: a manifest is a few hundred; a config blob a few hundred too
MAX_CONFIG = 1 << 20


def _shown(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit and text.isprintable() else repr(text[:limit])


def _ollama_display(host: str, namespace: str, model: str, tag: str) -> str:
    """The name as ``ollama list`` shows it: defaults left out."""
    if host.lower() == OLLAMA_HOST and namespace.lower() == OLLAMA_NAMESPACE:
        return f"{model}:{tag}"
    if host.lower() == OLLAMA_HOST:
        return f"{namespace}/{model}:{tag}"
    return f"{host}/{namespace}/{model}:{tag}"


def _child(folder: Path, name: str) -> Path | None:
    """``folder/name``, compared case-insensitively as ollama compares names."""
    exact = folder / name
    if exact.exists():
        return exact
    try:
        return next((p for p in folder.iterdir() if p.name.casefold() == name.casefold()), None)
    except OSError:
        return None


def _ollama_manifests(root: Path) -> Iterator[tuple[str, Path]]:
    base = root / "manifests"
    try:
        paths = sorted(base.glob("*/*/*/*"))
    except OSError:
        return
    for path in paths:
        if path.is_file():
            yield _ollama_display(*path.relative_to(base).parts), path


def _blob(root: Path, digest: object, display: str, manifest: Path) -> Path:
    match = DIGEST.match(digest) if isinstance(digest, str) else None
    if match is None:
        raise ModelStoreError(f"ollama:{display}: its manifest ({manifest}) names the blob "
                              f"{digest!r}, which is not a sha256 digest")
    for name in (f"sha256-{match[1]}", f"sha256:{match[1]}"):  # the second: stores before 0.1.x
        if (root / "blobs" / name).is_file():
            return root / "blobs" / name
    raise BlobMissingError(f"ollama:{display}: its manifest ({manifest}) is there but the blob it "
                           f"names is missing ({root / 'blobs' / f'sha256-{match[1]}'}); pull it again "
                           f"with: ollama pull {display}")


def _manifest(manifest: Path) -> tuple[dict, list[dict]]:
    """The manifest's JSON and its layers, each checked for the shape ``manifest/manifest.go``
    gives it; a ``ModelStoreError`` that says what is wrong otherwise."""
    data = load_json(read_regular(manifest, MAX_MANIFEST, "the manifest", ModelStoreError),
                     "the manifest", ModelStoreError)
    if not isinstance(data, dict):
        raise ModelStoreError(f"the manifest is a JSON {type(data).__name__}, not an object")
    layers = data.get("layers")
    if layers is None:
        layers = []
    if not isinstance(layers, list):
        raise ModelStoreError(f"its \"layers\" is a JSON {type(layers).__name__}, not a list")
    for k, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise ModelStoreError(f"its layer {k} is a JSON {type(layer).__name__}, not an object")
        for key, kind in (("mediaType", str), ("digest", str), ("size", int)):
            value = layer.get(key)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise ModelStoreError(f"its layer {k}'s \"{key}\" is not a JSON "
                                      f"{'string' if kind is str else 'integer'}")
    return data, layers


def _ollama_entry(root: Path, display: str, manifest: Path) -> Found:
    """The entry of one manifest: found, or broken with the reason (never an exception)."""
    try:
        return _checked_entry(root, display, manifest)
    except ModelError as exc:
        return broken("ollama", display, manifest, exc)
    except OSError as exc:  # a file that went away or cannot be read between two looks
        return broken("ollama", display, manifest, ModelStoreError(
            f"ollama:{display}: cannot read {exc.filename or manifest} ({exc.strerror or exc})"))


def _checked_entry(root: Path, display: str, manifest: Path) -> Found:
    if not inside(root / "manifests", manifest):  # a link out of the store: not its model
        return broken("ollama", display, manifest, ModelStoreError(
            f"ollama:{display}: its manifest {manifest} leads out of the store ({root}); emogram "
            "reads manifests inside it only"))
    try:
        data, layers = _manifest(manifest)
    except ModelStoreError as exc:
        return broken("ollama", display, manifest, ModelStoreError(
            f"ollama:{display}: cannot use its manifest {manifest}: {exc}"))
    weights = [layer for layer in layers if layer.get("mediaType") == OLLAMA_MODEL_LAYER]
    if not weights:
        kinds = ", ".join(sorted({str(layer.get("mediaType")) for layer in layers})) or "none"
        return broken("ollama", display, manifest, NotGGUFError(
            f"ollama:{display} has no GGUF layer ({OLLAMA_MODEL_LAYER}); its layers are: {kinds}. "
            "A cloud model or one stored as safetensors tensors cannot run here"))
    layer = weights[0]
    try:
        blob = _blob(root, layer.get("digest"), display, manifest)
    except ModelStoreError as exc:
        return broken("ollama", display, manifest, exc)
    digest = "sha256:" + DIGEST.match(layer["digest"])[1].lower()  # type: ignore[index]
    size = blob.stat().st_size
    fmt = _ollama_format(root, data.get("config"))
    if fmt not in ("", "gguf"):
        return broken("ollama", display, blob, NotGGUFError(
            f"ollama:{display} is stored as {_shown(fmt)!r}, not GGUF; emogram runs GGUF models only"), size)
    magic = head(blob)
    if magic != b"GGUF":
        return broken("ollama", display, blob, NotGGUFError(
            f"ollama:{display}: its model layer {blob} is not a GGUF file (it starts with {magic!r}); "
            "emogram runs GGUF models only"), size)
    want = layer.get("size")
    if isinstance(want, int) and want != size:
        return broken("ollama", display, blob, DigestMismatchError(
            f"ollama:{display}: the blob {blob} is {size} bytes but its manifest says {want}: "
            f"it is incomplete or damaged; pull it again with: ollama pull {display}"), size)
    return Found("ollama", display, blob, size, digest)


def _ollama_format(root: Path, config: object) -> str:
    """The config blob's ``model_format`` ("" when it cannot be read: ollama treats "" as GGUF)."""
    if not isinstance(config, dict):
        return ""
    digest = config.get("digest")
    match = DIGEST.match(digest) if isinstance(digest, str) else None
    if match is None:
        return ""
    try:  # a bounded read of a regular file: never a device's endless bytes nor a FIFO's wait
        data = load_json(read_regular(root / "blobs" / f"sha256-{match[1]}", MAX_CONFIG,
                                      "config blob", ModelStoreError), "config blob", ModelStoreError)
    except ModelStoreError:
        return ""
    value = data.get("model_format", "") if isinstance(data, dict) else ""
    return value if isinstance(value, str) else ""


def all_entries() -> Iterator[Found]:
    seen: set[str] = set()
    for root in ollama_roots():
        for display, manifest in _ollama_manifests(root):
            if display.casefold() not in seen:
                seen.add(display.casefold())
                yield _ollama_entry(root, display, manifest)


def find(name: str) -> Found:
    host, namespace, model, tag = parse_ollama_name(name)
    display = _ollama_display(host, namespace, model, tag)
    for root in ollama_roots():
        manifest: Path | None = root / "manifests"
        for part in (host, namespace, model, tag):
            manifest = _child(manifest, part) if manifest is not None else None
        if manifest is not None and manifest.is_file():
            return _ollama_entry(root, _ollama_display(*manifest.relative_to(root / "manifests").parts),
                                 manifest)
    raise not_found("ollama", display, [f.name for f in all_entries()])

