"""The teaching corpus: topics with staged explanations in the glossed format the engine decodes.

    {"topic": "how a kettle boils water", "kind": "explain",
     "answer": "electricity: ⚡ -> heating coil: 🔥 -> water: 💧 -> steam: ♨️ -> click: 🔘"}

Every line is checked the way the decoder would see it (``check``): the words of each part are
what the word phase may write (lower-case letters, at most four words), each group is one to three
emoji of the inventory under ``EMOJI_VERSION``, the separators are the four the decoder offers, the
emoji read back through ``emogram.parse``, and no part repeats a word or a group of another. Topics
are kept apart from every evaluation topic (``same_topic``: the same text, or the same content
words up to one extra one).

    python -m emogram.training.corpus build              # writers/*.jsonl -> corpus.jsonl, topics.txt, REMOVED.md
    python -m emogram.training.corpus check FILE...      # every problem, one line each
    python -m emogram.training.corpus check-bank FILE... # ... and, for a bank writer: 3+ parts, no twins
    python -m emogram.training.corpus clashes FILE...    # topics that are evaluation topics
"""

from __future__ import annotations

import functools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..knowledge.bank import Part, answer_parts
from .evaluation import checkout

SEPARATORS = {"+": "➕", "->": "➡️", "vs": "🆚", "=": "🟰"}
KINDS = ("explain", "phrase")
EMOJI_VERSION = 15.0  # the corpus teaches only emoji that common fonts draw (see docs/emoji.md)
MAX_PARTS = 6
MAX_WORDS = 4
_PART_WORDS = re.compile(r"[a-z][a-z'-]*(?: [a-z][a-z'-]*)*")
CORPUS_DIR = checkout("data/corpus")
_CONTRACTIONS = {"won't": "will not", "can't": "cannot", "n't": " not", "'re": " are", "'ll": " will",
                 "'ve": " have", "'m": " am", "'d": " would"}
# Words that say nothing of which topic it is ("how tides work" is "tides")
GENERIC = frozenset("work works working happen happens form forms make makes made way ways "
                    "explain explained process thing things does do get gets".split())


@dataclass(frozen=True)
class Entry:
    topic: str
    kind: str
    answer: str
    writer: str = ""
    domain: str = ""


def split_glossed(answer: str) -> list[Part]:
    """``"a: 🅰️ -> b c: 🐝"`` -> its parts; raises ``ValueError`` saying what is wrong."""
    parts: list[Part] = []
    for n, part in answer_parts(answer):
        if ":" in part.group:
            raise ValueError(f"part {n} {part.words + ': ' + part.group!r} is not 'words: emoji'")
        parts.append(part)
    return parts


def emoji_text(parts: list[Part]) -> str:
    """The emoji answer the parts stand for: groups joined by their operators."""
    out = []
    for p in parts:
        if p.op is not None:
            out.append(SEPARATORS[p.op])
        out.append(p.group)
    return " ".join(out)


@functools.cache
def allowed_emoji() -> frozenset[str]:
    """The emoji an entry may use: the inventory up to ``EMOJI_VERSION`` (built once a process)."""
    from emogram import EmojiFilter
    return frozenset(EmojiFilter(max_version=EMOJI_VERSION).select())


def check(entry: Entry, allowed: frozenset[str] | None = None, min_explain: int = 2) -> list[str]:
    """Every problem with one entry (empty when it is fine); a topic to explain has at least
    ``min_explain`` parts (the bank asks for 3: stages, not a pair)."""
    from emogram import parse
    from emogram.language.unicode import split_emoji

    problems = []
    if entry.kind not in KINDS:
        problems.append(f"kind {entry.kind!r} is not one of {KINDS}")
    if not entry.topic.strip() or len(entry.topic) > 120 or entry.topic != entry.topic.strip():
        problems.append("topic is empty, too long or has outer spaces")
    try:
        parts = split_glossed(entry.answer)
    except ValueError as exc:
        return problems + [str(exc)]
    low, high = (min_explain, MAX_PARTS) if entry.kind == "explain" else (1, 3)
    if not low <= len(parts) <= high:
        problems.append(f"{len(parts)} parts; a {entry.kind} has {low} to {high}")
    allowed = allowed if allowed is not None else allowed_emoji()
    seen_words: set[str] = set()
    seen_groups: set[str] = set()
    for n, p in enumerate(parts, 1):
        if not _PART_WORDS.fullmatch(p.words) or len(p.words.split()) > MAX_WORDS:
            problems.append(f"part {n}: words {p.words!r} must be 1-{MAX_WORDS} lower-case words "
                            "(letters, ' and - only)")
        try:
            chars = split_emoji(p.group)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            problems.append(f"part {n}: {exc}")
            continue
        if not 1 <= len(chars) <= 3:
            problems.append(f"part {n}: {len(chars)} emoji; a group has 1 to 3")
        bad = [c for c in chars if c not in allowed]
        if bad:
            problems.append(f"part {n}: {' '.join(bad)} not in the inventory up to Emoji {EMOJI_VERSION}")
        if p.words in seen_words:
            problems.append(f"part {n}: words {p.words!r} repeat an earlier part")
        if p.group in seen_groups:
            problems.append(f"part {n}: group {p.group} repeats an earlier part")
        seen_words.add(p.words)
        seen_groups.add(p.group)
    if not problems:
        try:
            parse(emoji_text(parts))
        except Exception as exc:  # noqa: BLE001
            problems.append(f"emogram.parse refuses it: {exc}")
    return problems


# --- topics apart from evaluation -----------------------------------------------------------------

def normalise(topic: str) -> str:
    return " ".join(re.sub(r"[^\w\s'-]", " ", topic.lower()).split())


def topic_key(topic: str) -> frozenset[str]:
    """The topic's content words, stemmed, without generic verbs: "how tides work" -> {tide}."""
    from emogram.knowledge.words import words
    return frozenset(w for w in words(topic) if w not in GENERIC)


def same_topic(a: str, b: str) -> bool:
    """The same text, or the same content words, or one's content words plus at most one more
    ("how ocean tides work" is "how tides work")."""
    if normalise(a) == normalise(b):
        return True
    ka, kb = topic_key(a), topic_key(b)
    if not ka or not kb:
        return False
    small, large = sorted((ka, kb), key=len)
    return small <= large and len(large) - len(small) <= 1


def clashes(topics: list[str], evaluation: list[str]) -> list[tuple[str, str]]:
    """(corpus topic, evaluation topic) pairs that are the same topic."""
    by_word: dict[str, list[str]] = {}
    by_text: dict[str, list[str]] = {}
    for ev in evaluation:
        for w in topic_key(ev) or {normalise(ev)}:
            by_word.setdefault(w, []).append(ev)
        by_text.setdefault(normalise(ev), []).append(ev)
    found = []
    for t in topics:
        near = {ev for w in (topic_key(t) or {normalise(t)}) for ev in by_word.get(w, ())}
        near.update(by_text.get(normalise(t), ()))
        found += [(t, ev) for ev in sorted(near) if same_topic(t, ev)]
    return found


# --- building the corpus from the writers' files ----------------------------------------------------

def plain_words(words: str) -> str:
    """Words as the decoder can write them: its word tokens are letters only, so "water-loving"
    becomes "water loving", "earth's" "earth", "won't" "will not"."""
    for short, long in _CONTRACTIONS.items():
        words = words.replace(short, long)
    words = re.sub(r"'s\b", "", words).replace("'", "").replace("-", " ")
    return " ".join(words.split())


def plain(entry: Entry) -> Entry:
    try:
        parts = split_glossed(entry.answer)
    except ValueError:
        return entry
    text = " ".join(((p.op + " ") if p.op else "") + f"{plain_words(p.words)}: {p.group}" for p in parts)
    return Entry(entry.topic, entry.kind, text, entry.writer, entry.domain)


def decodable(entry: Entry, tokenize, is_word, max_tokens: int) -> list[str]:
    """Problems the word phase would have: a part's words must be word tokens only, at most
    ``max_tokens`` of them (``decoding.gloss_words.WordPhase``)."""
    problems = []
    for n, p in enumerate(split_glossed(entry.answer), 1):
        tokens = tokenize((" " if n > 1 else "") + p.words)
        if len(tokens) > max_tokens:
            problems.append(f"part {n}: {p.words!r} is {len(tokens)} tokens; the decoder writes {max_tokens} at most")
        elif not all(is_word(t) for t in tokens):
            problems.append(f"part {n}: {p.words!r} has a token the decoder cannot write as a word")
    return problems


@dataclass
class Built:
    kept: list[Entry]
    removed: list[tuple[Entry, str]]


def build(writer_files: list[Path], evaluation: list[str], tokenize=None, is_word=None,
          max_tokens: int = 6, ordered: bool = False, keep: tuple[str, ...] = ()) -> Built:
    """Every writer's lines, made plain, checked, decodable, without duplicate topics (the first
    writer's line wins, files in name order, or in the order given when ``ordered``) and without
    evaluation topics (but for the topics of ``keep``)."""
    kept: list[Entry] = []
    removed: list[tuple[Entry, str]] = []
    seen_text: dict[str, Entry] = {}
    seen_key: dict[frozenset[str], Entry] = {}
    for path in (writer_files if ordered else sorted(writer_files)):
        for raw in load(path):
            e = plain(Entry(raw.topic, raw.kind, raw.answer, raw.writer or Path(path).stem, raw.domain))
            problems = check(e, allowed_emoji())
            if not problems and tokenize is not None:
                problems = decodable(e, tokenize, is_word, max_tokens)
            if problems:
                removed.append((raw, "; ".join(problems)))
                continue
            text, key = normalise(e.topic), topic_key(e.topic)
            twin = seen_text.get(text) or (seen_key.get(key) if key else None)
            if twin is not None:
                removed.append((raw, f"the same topic as {twin.writer}'s {twin.topic!r}"))
                continue
            seen_text[text] = e
            if key:
                seen_key[key] = e
            kept.append(e)
    clash = dict(clashes([e.topic for e in kept if e.topic not in keep], evaluation))
    removed += [(e, f"the evaluation topic {clash[e.topic]!r}") for e in kept if e.topic in clash]
    kept = [e for e in kept if e.topic not in clash]
    return Built(kept, removed)


def dumps(entry: Entry) -> str:
    return json.dumps({"topic": entry.topic, "kind": entry.kind, "answer": entry.answer,
                       "writer": entry.writer, "domain": entry.domain}, ensure_ascii=False)


def write_built(built: Built, directory: Path = CORPUS_DIR) -> None:
    (directory / "corpus.jsonl").write_text("".join(dumps(e) + "\n" for e in built.kept), encoding="utf-8")
    (directory / "topics.txt").write_text("".join(e.topic + "\n" for e in built.kept), encoding="utf-8")
    write_removed(built, directory / "REMOVED.md", "the corpus", "python -m emogram.training.corpus build")


def write_removed(built: Built, path: Path, what: str, command: str) -> None:
    path.write_text(removed_markdown(built, what, command), encoding="utf-8")


def removed_markdown(built: Built, what: str, command: str) -> str:
    reasons: dict[str, int] = {}
    for _, why in built.removed:
        reasons[_category(why)] = reasons.get(_category(why), 0) + 1
    lines = [f"# Lines removed when {what} was built", "",
             f"Generated by `{command}`; do not edit.", "",
             f"{len(built.kept)} lines kept, {len(built.removed)} removed.", "", "| reason | lines |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])]
    lines += ["", "| writer | topic | answer | why |", "|---|---|---|---|"]
    lines += [f"| {e.writer} | {e.topic} | {e.answer} | {why} |".replace("\n", " ") for e, why in built.removed]
    return "\n".join(lines) + "\n"


def _category(why: str) -> str:
    for needle, category in (("review: ", "the review found it wrong or unclear"),
                             ("the same topic as", "the same topic as another line (the earlier kept)"),
                             ("evaluation topic", "an evaluation topic"),
                             ("tokens; the decoder", "a part's words are over the decoder's token limit"),
                             ("cannot write as a word", "a part's words hold a token the decoder cannot write"),
                             ("lower-case words", "a part's words are not plain words after the clean-up"),
                             ("inventory", "an emoji outside the inventory")):
        if needle in why:
            return category
    return "another check"


def build_default(directory: Path = CORPUS_DIR) -> Built:
    """The shipped corpus, built with the default model's tokenizer."""
    from emogram.training.evaluation import evaluation_topics
    from emogram.decoding.gloss_words import WORD_TOKENS, is_word_token
    from emogram.backend.llama import Model
    from emogram.backend.models import resolve
    model = Model(resolve().path, device="cpu")
    try:
        built = build(sorted((directory / "writers").glob("*.jsonl")), evaluation_topics(),
                      model.tokenize, is_word_token(model.pieces(), model.control_mask()), WORD_TOKENS)
    finally:
        model.close()
    return built


def _report_twins(path, entries: list[Entry]) -> int:
    bad = 0
    seen: dict[frozenset[str], int] = {}  # topic -> the line it was first on
    for n, e in enumerate(entries, 1):
        key = topic_key(e.topic) or frozenset({normalise(e.topic)})
        if key in seen:
            print(f"{path}:{n}: {e.topic!r} is the same topic as line {seen[key]}")
            bad += 1
        seen.setdefault(key, n)
    corpus = [e.topic for e in load(CORPUS_DIR / "corpus.jsonl")]
    for t, old in clashes([e.topic for e in entries], corpus):
        print(f"{path}: {t!r} is already in the corpus as {old!r}: write another topic")
        bad += 1
    return bad


# --- files ----------------------------------------------------------------------------------------

def load(path: str | Path) -> list[Entry]:
    """A JSONL corpus or bank (``.gz``: the shipped bank's form)."""
    entries = []
    raw = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        import gzip
        raw = gzip.decompress(raw)
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            entries.append(Entry(d["topic"], d["kind"], d["answer"], d.get("writer", ""),
                                 d.get("domain", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a corpus line ({exc})") from None
    return entries


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["build"]:
        built = build_default()
        write_built(built)
        print(f"corpus: {len(built.kept)} lines kept, {len(built.removed)} removed "
              f"(data/corpus/REMOVED.md)", file=sys.stderr)
        return 0
    if len(args) < 2 or args[0] not in ("check", "check-bank", "clashes"):
        print(__doc__.strip().splitlines()[-2:], file=sys.stderr)
        return 2
    from emogram.training.evaluation import evaluation_topics
    evaluation = evaluation_topics()
    bad = 0
    allowed = allowed_emoji()
    for path in args[1:]:
        entries = load(path)
        if args[0] in ("check", "check-bank"):
            for n, e in enumerate(entries, 1):
                for problem in check(e, allowed, min_explain=3 if args[0] == "check-bank" else 2):
                    print(f"{path}:{n}: {e.topic!r}: {problem}")
                    bad += 1
        if args[0] == "check-bank":  # a bank writer's file: no topic twice, none the corpus has
            bad += _report_twins(path, entries)
        for t, ev in clashes([e.topic for e in entries], evaluation):
            print(f"{path}: {t!r} is the evaluation topic {ev!r}")
            bad += 1
        print(f"{path}: {len(entries)} entries, {bad} problems so far", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
