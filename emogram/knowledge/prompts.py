"""Every word emogram says to a model lives here: instructions, few-shot examples, prompt formats.

Two formats, picked from the model itself:

* ``chat``: the model's GGUF carries a chat template (an instruct model). The model renders it
  (``Model.render_chat``: jinja2, through llama-cpp-python's formatter, the same one its server
  uses), with the examples as earlier turns.
* ``completion``: no template (a base model such as Gemma 3 270M). A plain few-shot document whose
  next block the model continues; a blank line ends the answer.

Reasoning models (a template that mentions ``<think>``, e.g. DeepSeek-R1 distills, Qwen3) think in
words first when ``think=True``; otherwise an empty thinking block is written for them. The other
models get a one-line plan in words before the emoji when ``think=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import ModelError
from ..language.grammar import Operator, Shape
from ..language.unicode import EmojiFilter

INSTRUCTION = (
    "Explain the topic using only emoji. Show its key things and steps as a chain: "
    "join groups with {ops}. Start each new line with ➡️. Never use words."
)


@dataclass(frozen=True)
class Example:
    topic: str
    plan: str
    answer: str  # canonical emogram text


EXAMPLES: tuple[Example, ...] = (
    Example("how bees make honey",
            "bees fly to flowers, take nectar home, many bees in the hive turn it into honey",
            "🐝 ➡️ 🌸🌼 ➡️ 💧\n➡️ 🏠 ➕ 🐝🐝🐝 ➡️ 🍯"),
    Example("email",
            "you write a message, it travels over the internet, it lands in an inbox and is read",
            "🧑‍💻 ➡️ ✍️📧 ➡️ 🌐\n➡️ 📥 ➡️ 👀 🟰 📬"),
    Example("the seasons",
            "the earth tilts as it goes round the sun: spring, summer, autumn, winter",
            "🌍 ➕ ☀️ ➡️ 🌸 ➡️ 🏖️\n➡️ 🍂 ➡️ ❄️☃️"),
    Example("the stock market",
            "companies sell shares, people buy them, prices go up or down, it is a gamble",
            "🏢 ➡️ 📄💵 ➡️ 🧑‍🤝‍🧑\n➡️ 📈 🆚 📉\n➡️ 💰 🟰 🎲"),
    Example("rainbows",
            "sunlight and rain drops, the light bends and splits into colours",
            "☀️ ➕ 🌧️ ➡️ 💧🔦 ➡️ 🌈"),
    Example("recycling",
            "cans, bottles and paper are sorted, a factory makes them into new things, good for the planet",
            "🥫🧴📰 ➡️ ♻️ ➡️ 🏭\n➡️ 📦 🟰 🌍💚"),
    Example("sleep",
            "at night you go to bed, you dream, the alarm wakes you in the morning",
            "🌙 ➕ 🛏️ ➡️ 😴\n➡️ 💭 ➡️ ⏰☀️"),
    Example("football",
            "players run and kick the ball into the goal, one team wins and the other is sad",
            "⚽ ➕ 🏃🏃 ➡️ 🥅\n➡️ 🎉 🆚 😢"),
)


def fit_example(answer: str, shape: Shape, emoji_filter: EmojiFilter) -> str | None:
    """Trim an example to the shape and filter, so examples never show what the grammar forbids."""
    from ..language.tree import Group, Line, Tree, parse_tree

    allowed = set(emoji_filter.select())
    lines = []
    for line in parse_tree(answer).lines[: shape.lines[1]]:
        groups: list[Group] = []
        ops: list[Operator] = []
        for op, group in line.steps():
            kept = tuple(e for e in group.emoji if e.char in allowed)[: shape.emoji_per_group[1]]
            if not kept or len(groups) >= shape.steps[1]:
                continue
            if groups:
                ops.append(op if op in shape.operators else shape.operators[0])
            groups.append(Group(kept))
        if groups:
            lines.append(Line(tuple(groups), tuple(ops)))
    if len(lines) < shape.lines[0]:
        return None
    if any(len(line.groups) < shape.steps[0] for line in lines):
        return None
    if any(len(g.emoji) < shape.emoji_per_group[0] for line in lines for g in line.groups):
        return None
    return str(Tree(tuple(lines))) if lines else None


def instruction(shape: Shape) -> str:
    ops = ", ".join(f"{op.symbol} ({op.gloss})" for op in shape.operators) or "nothing"
    return INSTRUCTION.format(ops=ops)


@dataclass(frozen=True)
class Prompt:
    """What to evaluate, and how the answer is framed in this format."""

    text: str  # the prompt, with special tokens written as text
    add_bos: bool  # prepend the model's BOS token when tokenizing
    think: bool  # a free-text phase comes first
    think_close: str  # text that ends the free-text phase
    answer_prefix: str  # written after thinking, before the emoji
    end_texts: tuple[str, ...]  # pieces that end the answer (besides end-of-generation tokens)
    style: str
    shared_chars: int = 0  # length of the prefix every call shares (instructions, examples)
    topic_at: int = -1  # where the user's topic starts in ``text`` (-1: not found)
    topic_len: int = 0  # its length: tokenized as plain text, never as special tokens
    persist_shared: bool = True  # the shared prefix may be saved across runs (the prompt cache):
    #                              instructions and examples, not the bank entries one topic reads

    def parts(self) -> tuple[str, str, str, str]:
        """(shared prefix, markup before the topic, the topic, markup after it)."""
        cut = max(self.shared_chars, 0)
        if self.topic_at < cut:
            return self.text[:cut], self.text[cut:], "", ""
        end = self.topic_at + self.topic_len
        return (self.text[:cut], self.text[cut:self.topic_at], self.text[self.topic_at:end],
                self.text[end:])


def _is_reasoning_template(template: str) -> bool:
    return "<think>" in template


def build(model, topic: str, shape: Shape, emoji_filter: EmojiFilter, *, think: bool,
          style: str | None = None, examples: int = len(EXAMPLES)) -> Prompt:
    """The prompt for ``topic`` on ``model``: chat if the model has a template, else completion."""
    template = model.chat_template
    style = style or ("chat" if template else "completion")
    shots = [(ex, fit) for ex in EXAMPLES[:examples]
             if (fit := fit_example(ex.answer, shape, emoji_filter)) is not None]
    if style == "completion":
        return _completion(model, topic, shape, shots, think)
    if not template:
        raise ModelError(f"{model.path.name} has no chat template; use the completion prompt style")
    return _chat(model, template, topic, shape, shots, think)


def _completion(model, topic: str, shape: Shape, shots, think: bool) -> Prompt:
    parts = [f"Emoji explanations. {instruction(shape)}\n"]
    for ex, answer in shots:
        plan = f"Plan: {ex.plan}\n" if think else ""
        parts.append(f"\nTopic: {ex.topic}\n{plan}Emoji:\n{answer}\n")
    shared = len("".join(parts))
    topic_at = shared + len("\nTopic:")
    parts.append(f"\nTopic: {topic}\n" + ("Plan:" if think else "Emoji:\n"))
    return Prompt("".join(parts), model.add_bos, think, "\n", "Emoji:\n" if think else "",
                  ("\n\n",), "completion", shared, topic_at, len(topic) + 1)


_TOPIC_MARK = "\ue000emogram-topic\ue001"  # private-use characters: no topic holds them (clean_topic)


def _chat(model, template: str, topic: str, shape: Shape, shots, think: bool) -> Prompt:
    reasoning = _is_reasoning_template(template)
    system = instruction(shape)
    if think and not reasoning:
        system += " First write a short plan in words inside <think></think>, then the emoji."
    messages = [{"role": "system", "content": system}]
    for ex, answer in shots:
        messages.append({"role": "user", "content": ex.topic})
        reply = f"<think>\n{ex.plan}\n</think>\n\n{answer}" if think and not reasoning else answer
        messages.append({"role": "assistant", "content": reply})
    messages.append({"role": "user", "content": _TOPIC_MARK})  # replaced by the topic below
    bos = model.token_text(model.bos)
    try:
        text = model.render_chat(messages, enable_thinking=think)
        head = model.render_chat(messages[:-1], add_generation_prompt=False, enable_thinking=think)
    except Exception as exc:  # a template bug must not become a crash
        raise ModelError(f"the chat template of {model.path.name} failed to render: {exc}") from None
    # Where the template put the topic, found by a mark rather than by searching for the topic's
    # text (which could also match the template's own markup: a topic "<|im_end|>"); the topic
    # there is tokenized as plain text, everything else with special tokens.
    if text.count(_TOPIC_MARK) != 1:
        raise ModelError(f"the chat template of {model.path.name} does not show the user's message "
                         "once, as given; use the completion prompt style")
    topic_at = text.index(_TOPIC_MARK)
    text = text.replace(_TOPIC_MARK, topic)
    shared = len(head) if text.startswith(head) else 0
    add_bos = model.add_bos and not (bos and text.startswith(bos))
    span = (topic_at, len(topic))  # where the topic stands in the text
    if reasoning:
        opened = text.rstrip().endswith("<think>")
        if think:
            text += "" if opened else "<think>\n"
            return Prompt(text, add_bos, True, "</think>", "\n\n", (), "chat", shared, *span)
        closed = "\n\n</think>\n\n" if opened else "<think>\n\n</think>\n\n"
        return Prompt(text + closed, add_bos, False, "", "", (), "chat", shared, *span)
    if think:
        return Prompt(text + "<think>\n", add_bos, True, "</think>", "\n\n", (), "chat", shared, *span)
    return Prompt(text, add_bos, False, "", "", (), "chat", shared, *span)


# --- glossed answers (gloss.py): each part named in a word or two, then its emoji -----------------

GLOSS_INSTRUCTION = (
    "Emoji explanations. For each topic, name its key parts or steps in a word or two, each "
    "followed by its emoji. Join parts with + (together), -> (then), vs (against) or = (means).")

# Topics chosen apart from every evaluation set (bench/references, bench/topics.json, ELCo):
# tests/test_prompts.py checks it.
GLOSS_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("how a letter is delivered", "letter: ✉️ -> post box: 📮 -> van: 🚚 -> home: 🏠"),
    ("wet dog", "dog: 🐕 + water: 💦"),
    ("how ice cream is made", "milk: 🥛 + sugar: 🍬 -> freezer: 🧊 -> ice cream: 🍦"),
    ("loud music", "music: 🎶 + volume: 🔊"),
    ("cats or dogs", "cat: 🐈 vs dog: 🐕"),
    ("how a song is recorded", "singer: 🧑‍🎤 -> microphone: 🎙️ -> computer: 💻 -> song: 🎵"),
    ("noisy neighbours", "house: 🏠 + noise: 📢 -> anger: 😠"),
    ("teamwork", "people: 🧑‍🤝‍🧑 + tools: 🛠️ = success: 🏆"),
    ("a lost key", "key: 🔑 + search: 🔍"),
    ("how a plane flies", "wings: 🪽 + engine: ⚙️ -> lift: ⬆️ -> sky: ☁️"),
)


# What a model with an adapter trained by ``emogram.training`` sees (the adapter's metadata names
# it): the topic alone, no instruction, no examples; the adapter has learnt the format.
TOPIC_PROMPT = "Topic: {topic}\n"


def build_adapted(model, topic: str, template: str = TOPIC_PROMPT,
                  context: Sequence[tuple[str, str]] = ()) -> Prompt:
    """The prompt of an adapter trained on ``template``: the topic tokenized as plain text with the
    space before it (as ``build_gloss``'s completion prompt does). ``context``: (topic, glossed
    answer) pairs of the bank, written before it as earlier answers; they are the prompt's shared
    prefix, so their evaluated state is kept and reused by the next answer that reads the same
    entries (the same topic again, with another seed or shape). The tokens are those of the whole
    text either way: the prefix ends with a newline, where the tokenizer never joins."""
    at = template.index("{topic}")
    before, after = template[:at], template[at + len("{topic}"):]
    lead = 1 if before.endswith(" ") else 0
    read = "".join(template.format(topic=t) + answer + "\n" for t, answer in context)
    text = read + before + topic + after
    return Prompt(text, model.add_bos, False, "", "", ("\n",), "adapter", len(read), len(read) + at - lead,
                  len(topic) + lead, persist_shared=False)


def tokens(model, prompt: Prompt) -> tuple[tuple[int, ...], list[int]]:
    """Tokens of the part every call shares, and of this call's part. The topic is tokenized as
    plain text, so text such as ``<end_of_turn>`` in it stays text. (Training tokenizes its
    examples with this too, so an adapter learns the tokens the engine feeds it.)"""
    shared_text, before, topic, after = prompt.parts()
    special = prompt.style == "chat"  # only a chat template's markup is special-token text; the
    #                                   other formats are plain, bank entries read in them included
    shared = tuple(model.tokenize(shared_text, add_special=prompt.add_bos, parse_special=special)) \
        if shared_text else ()
    own = model.tokenize(before, add_special=prompt.add_bos and not shared, parse_special=special)
    own += model.tokenize(topic) + model.tokenize(after, parse_special=special)
    return shared, own


def build_gloss(model, topic: str, *, style: str | None = None,
                context: Sequence[tuple[str, str]] = ()) -> Prompt:
    """The prompt for a glossed answer: the examples, then the topic; the model starts with a word.
    A model whose adapter names the prompt it was trained with gets that prompt instead.
    ``context``: (topic, glossed answer) pairs from the bank, read just before the topic (after the
    examples every call shares, so their saved state is still reused)."""
    adapter = getattr(model, "adapter", None)
    if style is None and adapter is not None and adapter.prompt:
        return build_adapted(model, topic, adapter.prompt, context)
    template = model.chat_template
    style = style or ("chat" if template else "completion")
    if style == "completion":
        parts = [GLOSS_INSTRUCTION + "\n"]
        parts += [f"\nTopic: {t}\n{answer}\n" for t, answer in GLOSS_EXAMPLES]
        shared = len("".join(parts))
        read = "".join(f"\nTopic: {t}\n{answer}\n" for t, answer in context)
        text = "".join(parts) + read + f"\nTopic: {topic}\n"
        return Prompt(text, model.add_bos, False, "", "", ("\n",), "completion", shared,
                      shared + len(read) + len("\nTopic:"), len(topic) + 1)
    if not template:
        raise ModelError(f"{model.path.name} has no chat template; use the completion prompt style")
    messages = [{"role": "system", "content": GLOSS_INSTRUCTION}]
    for t, answer in GLOSS_EXAMPLES:
        messages += [{"role": "user", "content": t}, {"role": "assistant", "content": answer}]
    examples = len(messages)
    for t, answer in context:
        messages += [{"role": "user", "content": t}, {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": topic})
    bos = model.token_text(model.bos)
    try:
        text = model.render_chat(messages)
        head = model.render_chat(messages[:examples], add_generation_prompt=False)
    except Exception as exc:  # a template bug must not become a crash
        raise ModelError(f"the chat template of {model.path.name} failed to render: {exc}") from None
    shared = len(head) if text.startswith(head) else 0
    if _is_reasoning_template(template):  # an empty thinking block, as for direct answers
        text += "\n\n</think>\n\n" if text.rstrip().endswith("<think>") else "<think>\n\n</think>\n\n"
    at = text.rfind(topic, shared)
    add_bos = model.add_bos and not (bos and text.startswith(bos))
    return Prompt(text, add_bos, False, "", "", ("\n",), "chat", shared, at, len(topic) if at >= 0 else 0)
