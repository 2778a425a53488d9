"""How many tokens, at most, it takes to finish an answer from a given point.

The engine only takes a token when the answer can still be completed within the tokens that are
left; so when the budget runs low the answer closes its emoji, group and line instead of being cut.
That needs an upper bound on the tokens still needed that the model's vocabulary can really meet,
and that goes down by one with the right token (so it never paints itself into a corner).

The bound is a shortest path: each lexeme (an emoji, an operator, a space, a newline) is written by
tokens that lie inside it, found by walking the lexeme trie and a trie of the vocabulary's pieces
together; lexemes are then strung together by the cheapest path through the structure's DFA.
Tokens that span two lexemes (``" ➡️"``) are only ever shortcuts, so the bound holds.
"""

from __future__ import annotations

import sys

from .lexeme_dfa import distances_to_accept
from .matcher import ROOT, Matcher, State

INF = float("inf")


class TokenDistance:
    """``cost(state)``: fewest tokens (using tokens inside lexemes) to reach a complete answer."""

    def __init__(self, matcher: Matcher, pieces: list[bytes]) -> None:
        self.m = matcher
        trie: dict = {}
        for piece in set(pieces):
            node = trie
            for b in piece:
                node = node.setdefault(b, {})
            node[-1] = True
        self.pieces = trie
        self._memo: dict[tuple, float] = {}
        classes = {sym for c in self.m.children[ROOT].values() if (sym := self.m.lexeme[c]) is not None}
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 10_000))
        try:
            self.lexeme_cost = {sym: self._cost((ROOT, b"", sym)) for sym in classes}
        finally:
            sys.setrecursionlimit(limit)
        self.structure = self._structure_costs()

    # -- inside one lexeme --
    def _next(self, key: tuple, b: int) -> tuple | None:
        n, pending, sym = key
        p = pending + bytes([b])
        if _complete(p):
            try:
                cp = ord(p.decode("utf-8"))
            except UnicodeDecodeError:
                return None
            child = self.m.children[n].get(cp)
            if child is None or (n == ROOT and self.m.lexeme[child] != sym):
                return None
            return child, b"", sym
        row = self.m._prefix_table(n).get(p)
        if row is None or (n == ROOT and sym not in row):
            return None
        return n, p, sym

    def _cost(self, key: tuple) -> float:
        memo = self._memo.get(key)
        if memo is not None:
            return memo
        n, pending, _ = key
        if n != ROOT and not pending and self.m.final[n] is not None:
            self._memo[key] = 0
            return 0
        self._memo[key] = INF  # no cycles (every token consumes bytes), but be safe
        best = INF
        stack = [(key, self.pieces)]
        while stack:
            at, node = stack.pop()
            for b, child in node.items():
                if b == -1:
                    continue
                nxt = self._next(at, b)
                if nxt is None:
                    continue
                if -1 in child:
                    best = min(best, 1 + self._cost(nxt))
                if len(child) > 1 or -1 not in child:
                    stack.append((nxt, child))
        self._memo[key] = best
        return best

    # -- across lexemes --
    def _structure_costs(self) -> list[float]:
        return distances_to_accept(self.m.dfa.trans, self.m.dfa.accepting, self.lexeme_cost)

    def cost(self, state: State) -> float:
        q, n, pending, _ = state
        trans = self.m.dfa.trans
        if n == ROOT:
            if not pending:
                return self.structure[q]
            return min((self._cost((ROOT, pending, sym)) + self.structure[to]
                        for sym, to in trans[q].items()), default=INF)
        sym, end = self.m.lexeme[n], self.m.final[n]
        assert sym is not None  # every node but the root is in a lexeme
        best = self._cost((n, pending, sym)) + self.structure[trans[q][sym]]
        if pending and end is not None:  # the open lexeme may end; pending starts another
            after = trans[q][end]
            best = min([best] + [self._cost((ROOT, pending, s2)) + self.structure[to]
                                 for s2, to in trans[after].items()])
        return best


def _complete(p: bytes) -> bool:
    """Does ``p`` have the length of one whole UTF-8 character (judged by its lead byte)?"""
    lead = p[0]
    need = 1 if lead < 0x80 else 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF \
        else 4 if 0xF0 <= lead <= 0xF4 else 0
    return need == len(p)
