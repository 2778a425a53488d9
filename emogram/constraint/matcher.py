"""An incremental recogniser for the emogram language, fed with token bytes.

llama.cpp's grammar sampler is the judge of every token, but it cannot answer two questions the
engine must ask: *how many bytes, at least, until the text is complete?* (so a token budget is
met by closing the structure, not by cutting it) and *which emoji just finished?* (for streaming
whole emoji and for repetition control). This module answers both, from the same rules the GBNF
was written from (``grammar.structure_rules``), so the three cannot drift; a property test checks
they agree.

Two layers, as in a lexer and a parser:

* lexemes (one content emoji, or a literal: space, newline, an operator) are recognised by a
  code-point trie; a lexeme ends where the trie cannot go on (no emoji is a concatenation of others,
  and continuation code points such as U+FE0F or a skin tone never start a lexeme: both checked);
* the sequence of lexemes is checked by a small DFA built from the rules (``lexeme_dfa``), with
  the minimum number of bytes to acceptance precomputed for each DFA state.

States are immutable tuples, so trying a token costs nothing to undo.
"""

from __future__ import annotations

import functools

from ..language.ebnf import Alt, Expr, Lit, Rep, Seq
from ..language.grammar import Grammar
from .lexeme_dfa import EMOJI, LexemeDFA, utf8_len

ROOT = 0  # trie root: between lexemes

# (dfa_state, trie_node, pending_utf8_bytes, current_lexeme_text)
State = tuple[int, int, bytes, str]


class Matcher:
    """Feed it the bytes of each token; it says whether they fit and how far the end is."""

    def __init__(self, grammar: Grammar) -> None:
        self.grammar = grammar
        children: list[dict[int, int]] = [{}]
        final: list[str | None] = [None]
        lexeme: list[str | None] = [None]  # lexeme class each node belongs to

        def node(sym: str, parent: int, cp: int) -> int:
            nxt = children[parent].get(cp)
            if nxt is None:
                children.append({})
                final.append(None)
                lexeme.append(sym)
                nxt = len(children) - 1
                children[parent][cp] = nxt
            elif lexeme[nxt] != sym:
                raise AssertionError(f"lexemes {lexeme[nxt]!r} and {sym!r} share a prefix")
            return nxt

        literals = sorted(_literal_texts(grammar.rules))
        for text in literals:
            at = ROOT
            for ch in text:
                at = node(text, at, ord(ch))
            final[at] = text
        # Content emoji: copy the minimised trie; shared sub-trees stay shared.
        trie = grammar.trie
        assert trie is not None, "a compiled grammar has its trie"
        copied = {trie.root: ROOT}

        def copy(src: int) -> None:
            dst = copied[src]
            for cp, target in trie.nodes[src].edges:
                if dst == ROOT and cp in children[ROOT]:
                    raise AssertionError(f"content emoji and a literal both start with U+{cp:04X}")
                if target not in copied:
                    children.append({})
                    final.append(EMOJI if trie.nodes[target].final else None)
                    lexeme.append(EMOJI)
                    copied[target] = len(children) - 1
                    copy(target)
                children[dst][cp] = copied[target]

        copy(trie.root)
        self.children = children
        self.final = final
        self.lexeme = lexeme
        # Determinism: a code point that continues a finished lexeme never starts a new one.
        starters = set(children[ROOT])
        for n, kids in enumerate(children):
            if n != ROOT and final[n] is not None and starters & set(kids):
                raise AssertionError("a lexeme continuation is also a lexeme start")
        self.literals = frozenset(literals)
        self.min_rest = self._min_rest()
        self.sole = self._sole_completions()
        cost = {text: len(text.encode()) for text in literals}
        cost[EMOJI] = self.min_rest_from_root(EMOJI)
        self.dfa = LexemeDFA.build(grammar.rules, cost)
        self.initial: State = (0, ROOT, b"", "")
        self._prefixes: dict[int, dict[bytes, dict[str, int]]] = {}

    # -- precomputation --
    def _min_rest(self) -> list[int]:
        memo: dict[int, int] = {}

        def rest(n: int) -> int:
            if n in memo:
                return memo[n]
            best = 0 if self.final[n] is not None else min(
                len(chr(cp).encode()) + rest(c) for cp, c in self.children[n].items())
            memo[n] = best
            return best

        return [rest(n) if n != ROOT else 0 for n in range(len(self.children))]

    def _sole_completions(self) -> list[str | None]:
        """For each node: the rest of the one lexeme it can still become, or None if several."""
        memo: dict[int, str | None] = {}

        def sole(n: int) -> str | None:
            if n not in memo:
                kids = self.children[n]
                if self.final[n] is not None:
                    memo[n] = None if kids else ""
                elif len(kids) == 1:
                    (cp, child), = kids.items()
                    rest = sole(child)
                    memo[n] = None if rest is None else chr(cp) + rest
                else:
                    memo[n] = None
            return memo[n]

        return [None if n == ROOT else sole(n) for n in range(len(self.children))]

    def min_rest_from_root(self, sym: str) -> int:
        return min(len(chr(cp).encode()) + self.min_rest[c]
                   for cp, c in self.children[ROOT].items() if self.lexeme[c] == sym)

    def _prefix_table(self, n: int) -> dict[bytes, dict[str, int]]:
        """For a node: each proper UTF-8 prefix of a next code point -> {lexeme class: fewest
        bytes to finish that lexeme after the prefix}."""
        table = self._prefixes.get(n)
        if table is None:
            table = {}
            for cp, child in self.children[n].items():
                enc = chr(cp).encode()
                sym = self.lexeme[child]
                for k in range(1, len(enc)):
                    row = table.setdefault(enc[:k], {})
                    cost = len(enc) - k + self.min_rest[child]
                    if cost < row.get(sym, cost + 1):  # type: ignore[arg-type]
                        row[sym] = cost  # type: ignore[index]
            self._prefixes[n] = table
        return table

    # -- stepping --
    def _step(self, q: int, n: int, text: str, cp: int, done: list[str]) -> tuple[int, int, str] | None:
        trans = self.dfa.trans
        if n != ROOT:
            child = self.children[n].get(cp)
            if child is not None:
                return q, child, text + chr(cp)
            sym = self.final[n]
            if sym is None:
                return None
            q = trans[q][sym]
            done.append(text)
        child = self.children[ROOT].get(cp)
        if child is None or self.lexeme[child] not in trans[q]:
            return None
        return q, child, chr(cp)

    def advance(self, state: State, data: bytes) -> tuple[State, list[str]] | None:
        """The state after ``data`` and the lexemes it completed; None if ``data`` cannot follow."""
        q, n, pending, text = state
        buf = pending + data if pending else data
        done: list[str] = []
        i = 0
        size = len(buf)
        while i < size:
            need = utf8_len(buf[i])
            if need == 0:
                return None
            if i + need > size:
                break
            try:
                cp = ord(buf[i:i + need].decode("utf-8"))
            except UnicodeDecodeError:
                return None
            step = self._step(q, n, text, cp, done)
            if step is None:
                return None
            q, n, text = step
            i += need
        rest = buf[i:]
        if rest and not self._partial_ok(q, n, rest):
            return None
        return (q, n, rest, text), done

    def _partial_ok(self, q: int, n: int, prefix: bytes) -> bool:
        if utf8_len(prefix[0]) <= len(prefix) or any(not 0x80 <= b <= 0xBF for b in prefix[1:]):
            return False
        if n != ROOT and prefix in self._prefix_table(n):
            return True
        after = self._after_lexeme(q, n)
        return after is not None and any(
            sym in self.dfa.trans[after] for sym in self._prefix_table(ROOT).get(prefix, ()))

    def _after_lexeme(self, q: int, n: int) -> int | None:
        """DFA state once the open lexeme (if any) is closed; None if it cannot close here."""
        if n == ROOT:
            return q
        sym = self.final[n]
        return None if sym is None else self.dfa.trans[q][sym]

    def accepting(self, state: State) -> bool:
        q, n, pending, _ = state
        if pending:
            return False
        if n == ROOT:
            return q in self.dfa.accepting
        sym = self.final[n]
        return sym is not None and self.dfa.trans[q][sym] in self.dfa.accepting

    def remaining(self, state: State) -> float:
        """Fewest bytes that must still be written before the text may end."""
        q, n, pending, _ = state
        trans, dist = self.dfa.trans, self.dfa.distance
        if not pending:
            if n == ROOT:
                return dist[q]
            return self.min_rest[n] + dist[trans[q][self.lexeme[n]]]  # type: ignore[index]
        best = float("inf")
        if n != ROOT:
            row = self._prefix_table(n).get(pending)
            if row:
                sym = self.lexeme[n]
                best = row[sym] + dist[trans[q][sym]]  # type: ignore[index]
        after = self._after_lexeme(q, n)
        if after is not None:
            for sym, cost in self._prefix_table(ROOT).get(pending, {}).items():
                if sym in trans[after]:
                    best = min(best, cost + dist[trans[after][sym]])
        return best

    def can_continue(self, state: State) -> bool:
        """False when the structure is full and only the end may follow."""
        q, n, pending, _ = state
        if pending or (n != ROOT and self.children[n]):
            return True
        after = self._after_lexeme(q, n)
        return after is not None and bool(self.dfa.trans[after])

    def finish(self, state: State) -> list[str]:
        """The lexeme still open at the end of the text (if the text may end here)."""
        return [state[3]] if state[1] != ROOT and self.accepting(state) else []

    def completed_emoji(self, state: State) -> str | None:
        """The content emoji the state sits at the end of (it may still grow, e.g. a skin tone)."""
        _, n, pending, text = state
        if n != ROOT and not pending and self.final[n] == EMOJI:
            return text
        return None

    def committed_emoji(self, state: State) -> str | None:
        """The content emoji the text is now bound to write: the one just finished, or the only one
        the open lexeme can still become (``♻`` can only become ``♻️``). None if not yet decided."""
        _, n, pending, text = state
        if n == ROOT or pending or self.lexeme[n] != EMOJI:
            return None
        if self.final[n] == EMOJI:
            return text
        rest = self.sole[n]
        return None if rest is None else text + rest

    def text_accepted(self, text: str) -> bool:
        """Whole-text check (tests and the oracle's twin)."""
        step = self.advance(self.initial, text.encode("utf-8"))
        return step is not None and self.accepting(step[0])


def _literal_texts(rules: dict[str, Expr]) -> set[str]:
    out: set[str] = set()

    def walk(e: Expr) -> None:
        if isinstance(e, Lit):
            out.add(e.text)
        elif isinstance(e, (Seq, Alt)):
            for i in e.items:
                walk(i)
        elif isinstance(e, Rep):
            walk(e.item)

    for expr in rules.values():
        walk(expr)
    return out


@functools.lru_cache(maxsize=32)
def matcher_for(grammar: Grammar) -> Matcher:
    return Matcher(grammar)
