"""emogram's lark grammar in llguidance's lark dialect, for the same language (``convert_lark``).

Two of the conversion's rules change llguidance's behaviour, not only its spelling, and both are
needed for the mask to be exactly the grammar's (``checks.py`` compares it token by token with
emogram's matcher): runs of emoji are fused into one lexeme (llguidance's greedy byte lexer would
refuse ``👍👍``), and llguidance's byte forcing is turned off (it would allow only the canonical
token of forced bytes: after ``❤`` the token ``\xef\xb8\x8f`` but not ``\xef``). Plain text: the
conversion needs no llguidance.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["NO_FORCING", "convert_lark"]


_REPEAT = re.compile(r"~[ \t]*(\d+)(?:[ \t]*\.\.[ \t]*(\d+))?")
_RULE_HEAD = re.compile(r"[ \t]*[?!]?([a-z_][a-z0-9_]*)(?:\.-?\d+)?[ \t]*:")
_TERM_HEAD = re.compile(r"[ \t]*([A-Z_][A-Z0-9_]*)(?:\.-?\d+)?[ \t]*:")
_TERM_AT_END = re.compile(r"(?<![A-Za-z0-9_])([A-Z_][A-Z0-9_]*)[ \t]*$")
NO_FORCING = '%llguidance {"no_forcing": true}'


def convert_lark(lark_text: str, *, fuse_runs: bool = True, forcing: bool = False) -> str:
    r"""emogram's lark (Python ``lark`` dialect) -> llguidance's lark dialect, same language.

    Rules (outside comments, string literals and regexes unless said otherwise):

    1. repetition: ``item ~ n`` -> ``item{n}``, ``item ~ lo..hi`` -> ``item{lo,hi}`` (the space
       before ``~`` is dropped so the braces bind to the item before them, a name or a group);
    2. regexes (``/.../``, Python ``re`` -> Rust ``regex`` syntax): ``\uXXXX`` -> ``\u{XXXX}``,
       ``\UXXXXXXXX`` -> ``\u{X...}``, ``\N{NAME}`` -> ``\u{X...}``; inside a character class a
       literal ``[`` is escaped and so is the second character of ``&&``, ``~~``, ``--`` (Rust reads
       those as nested classes and set operations, Python as literals); the rest is kept
       (``\xHH``, ``(?:...)``, literal emoji, ``\/``);
    3. fused runs (``fuse_runs``): in a grammar rule, a repeated TERMINAL (``T ~ lo..hi``,
       ``T+``, ``T*``) becomes one new terminal ``T__lo_hi: T{lo,hi}`` (``T__1_INF: T+``,
       ``T__0_INF: T*``). llguidance lexes greedily, byte by byte, with one byte of lookahead, so
       two adjacent lexemes cannot be split where the first could still grow and the next starts
       with the same byte: ``👍👍`` (U+1F44D may take a skin tone, and both the tone and the next
       emoji start with F0 9F) or ``❤️❤️`` (a ZWJ and ❤ both start with E2) would be refused. As
       one lexeme the run is matched by the regex automaton itself, exactly;
    4. no forcing (unless ``forcing``): a first line ``%llguidance {"no_forcing": true}``. Without
       it, where the grammar forces bytes (after ``❤`` only U+FE0F may follow) llguidance allows
       only the canonical tokenization of those bytes (token ``\xef\xb8\x8f``, not ``\xef``): a
       narrower token set than the grammar's, and faster, but not the same constraint.

    Comments and string literals (``"..."`` with their escapes) are kept as they are. llguidance
    1.9 would also read ``~ lo..hi`` and ``\uXXXX`` itself (the self-check compiles the
    unconverted text too and compares): rules 1-2 normalise to the documented spelling.
    """
    out: list[str] = []
    fused: dict[str, str] = {}
    defining = ""  # "rule" or "terminal": the definition the scanner is in
    i, n = 0, len(lark_text)
    at_line_start = True
    while i < n:
        if at_line_start:
            at_line_start = False
            if _RULE_HEAD.match(lark_text, i):
                defining = "rule"
            elif _TERM_HEAD.match(lark_text, i):
                defining = "terminal"
        c = lark_text[i]
        if c == "\n":
            out.append(c)
            i += 1
            at_line_start = True
        elif lark_text.startswith("//", i):  # comment to the end of the line
            j = lark_text.find("\n", i)
            j = n if j < 0 else j
            out.append(lark_text[i:j])
            i = j
        elif c == '"':
            j = _end_of_string(lark_text, i)
            out.append(lark_text[i:j])
            i = j
        elif c == "/":
            j = _end_of_regex(lark_text, i)
            out.append("/" + _convert_regex(lark_text[i + 1:j - 1]) + "/")
            i = j
            while i < n and lark_text[i] in "imslux":  # lark regex flags
                out.append(lark_text[i])
                i += 1
        elif c in "~+*":
            if c == "~":
                m = _REPEAT.match(lark_text, i)
                if not m:
                    raise ValueError(f"cannot read the repetition at offset {i}: {lark_text[i:i + 20]!r}")
                lo, hi = m.group(1), m.group(2)
                hi = lo if hi is None else hi
                i = m.end()
            else:
                lo, hi = ("1" if c == "+" else "0"), "INF"
                i += 1
            while out and out[-1] in (" ", "\t"):
                out.pop()
            brace = "{%s}" % lo if lo == hi else ("{%s,%s}" % (lo, hi) if hi != "INF" else c)
            if fuse_runs and defining == "rule":
                tail = "".join(out[-64:])
                m = _TERM_AT_END.search(tail)
                if m:
                    term = m.group(1)
                    name = f"{term}__{lo}_{hi}"
                    while name not in fused and re.search(rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])",
                                                          lark_text):
                        name += "_"
                    fused[name] = term + brace
                    _drop_tail(out, len(term))
                    out.append(name)
                    continue
            out.append(brace)
        else:
            out.append(c)
            i += 1
    text = "".join(out)
    if fused:
        if not text.endswith("\n"):
            text += "\n"
        text += "// fused runs of a terminal (one lexeme each: see convert_lark)\n"
        text += "".join(f"{name}: {body}\n" for name, body in fused.items())
    if not forcing:
        text = NO_FORCING + "\n" + text
    return text


def _drop_tail(out: list[str], k: int) -> None:
    """Remove the last ``k`` characters from a list of string pieces."""
    while k > 0:
        last = out.pop()
        if len(last) > k:
            out.append(last[:-k])
            return
        k -= len(last)


def _end_of_string(text: str, i: int) -> int:
    """Offset just past the string literal opening at ``i`` (and its ``i`` flag)."""
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == '"':
            j += 1
            if j < len(text) and text[j] == "i":
                j += 1
            return j
        if text[j] == "\n":
            break
        j += 1
    raise ValueError(f"unterminated string literal at offset {i}")


def _end_of_regex(text: str, i: int) -> int:
    """Offset just past the closing ``/`` of the regex opening at ``i`` (flags not included)."""
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == "/":
            return j + 1
        if text[j] == "\n":
            break
        j += 1
    raise ValueError(f"unterminated regex at offset {i}")


_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_HEX8 = re.compile(r"[0-9A-Fa-f]{8}")


def _convert_regex(body: str) -> str:
    out: list[str] = []
    i, n = 0, len(body)
    in_class = False
    class_start = -1  # offset of the first member of the current class
    while i < n:
        c = body[i]
        if c == "\\" and i + 1 < n:
            e = body[i + 1]
            if e == "u" and _HEX4.fullmatch(body, i + 2, i + 6):
                out.append("\\u{%x}" % int(body[i + 2:i + 6], 16))
                i += 6
            elif e == "U" and _HEX8.fullmatch(body, i + 2, i + 10):
                out.append("\\u{%x}" % int(body[i + 2:i + 10], 16))
                i += 10
            elif e == "N" and i + 2 < n and body[i + 2] == "{":
                j = body.index("}", i + 3)
                out.append("\\u{%x}" % ord(unicodedata.lookup(body[i + 3:j])))
                i = j + 1
            else:
                out.append(body[i:i + 2])
                i += 2
            continue
        if not in_class:
            if c == "[":
                in_class = True
                out.append(c)
                i += 1
                if i < n and body[i] == "^":
                    out.append("^")
                    i += 1
                class_start = i
                if i < n and body[i] == "]":  # a leading ']' is a literal in Python
                    out.append("\\]")
                    i += 1
                continue
            out.append(c)
            i += 1
            continue
        # inside a character class
        if c == "]":
            in_class = False
            out.append(c)
        elif c == "[":
            out.append("\\[")
        elif c in "&~-" and i > class_start and body[i - 1] == c and not _escaped(body, i - 1):
            out.append("\\" + c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _escaped(body: str, i: int) -> bool:
    k = i - 1
    while k >= 0 and body[k] == "\\":
        k -= 1
    return (i - 1 - k) % 2 == 1

