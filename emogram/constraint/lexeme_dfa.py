"""The lexeme layer's automaton: which lexeme may follow which, and how far the end is.

The rules of ``grammar.structure_rules`` are compiled here (Thompson construction, then subsets)
into a small DFA over lexeme classes (one class for every content emoji, one per literal), with the
minimum number of bytes to acceptance precomputed for each state. ``matcher.Matcher`` drives it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Mapping, Sequence

from ..language.ebnf import EMOJI_RULE, Alt, Expr, Lit, Ref, Rep, Seq

EMOJI = "EMOJI"  # the lexeme class of every content emoji


def utf8_len(lead: int) -> int:
    """The length of the UTF-8 sequence a lead byte starts (0 for a continuation or invalid byte)."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0  # continuation byte or invalid lead


class _NFA:
    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[str, int]]] = []

    def new(self) -> int:
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, expr: Expr, rules: dict[str, Expr], start: int) -> int:
        if isinstance(expr, Lit):
            end = self.new()
            self.edges[start].append((expr.text, end))
            return end
        if isinstance(expr, Ref):
            if expr.name == EMOJI_RULE:
                end = self.new()
                self.edges[start].append((EMOJI, end))
                return end
            return self.build(rules[expr.name], rules, start)
        if isinstance(expr, Seq):
            for item in expr.items:
                start = self.build(item, rules, start)
            return start
        if isinstance(expr, Alt):
            end = self.new()
            for item in expr.items:
                s = self.new()
                self.eps[start].append(s)
                self.eps[self.build(item, rules, s)].append(end)
            return end
        if isinstance(expr, Rep):
            for _ in range(expr.lo):
                start = self.build(expr.item, rules, start)
            end = self.new()
            self.eps[start].append(end)
            for _ in range(expr.hi - expr.lo):
                start = self.build(expr.item, rules, start)
                self.eps[start].append(end)
            return end
        raise TypeError(expr)

    def closure(self, states: frozenset[int]) -> frozenset[int]:
        seen = set(states)
        todo = list(states)
        while todo:
            for nxt in self.eps[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)


def distances_to_accept(trans: Sequence[dict[str, int]], accepting: frozenset[int],
                        cost: Mapping[str, float]) -> list[float]:
    """Cheapest way from each DFA state to an accepting one, each lexeme costing ``cost[sym]``
    (Dijkstra on the reversed graph, from every accepting state at once)."""
    back: list[list[tuple[int, float]]] = [[] for _ in trans]
    for q, row in enumerate(trans):
        for sym, to in row.items():
            back[to].append((q, cost.get(sym, float("inf"))))
    dist = [float("inf")] * len(trans)
    heap: list[tuple[float, int]] = [(0, q) for q in accepting]
    for q in accepting:
        dist[q] = 0
    while heap:
        d, q = heapq.heappop(heap)
        if d > dist[q]:
            continue
        for p, c in back[q]:
            if d + c < dist[p]:
                dist[p] = d + c
                heapq.heappush(heap, (d + c, p))
    return dist


@dataclass(frozen=True)
class LexemeDFA:
    """Which lexeme may come next, and how many bytes at least until the text may end."""

    trans: tuple[dict[str, int], ...]
    accepting: frozenset[int]
    distance: tuple[float, ...]  # min bytes from each state to acceptance

    @classmethod
    def build(cls, rules: dict[str, Expr], cost: dict[str, int]) -> "LexemeDFA":
        nfa = _NFA()
        start = nfa.new()
        end = nfa.build(rules["root"], rules, start)
        first = nfa.closure(frozenset([start]))
        index = {first: 0}
        order = [first]
        trans: list[dict[str, int]] = []
        for subset in order:
            moves: dict[str, set[int]] = {}
            for s in subset:
                for sym, to in nfa.edges[s]:
                    moves.setdefault(sym, set()).add(to)
            row = {}
            for sym, targets in moves.items():
                nxt = nfa.closure(frozenset(targets))
                if nxt not in index:
                    index[nxt] = len(order)
                    order.append(nxt)
                row[sym] = index[nxt]
            trans.append(row)
        accepting = frozenset(i for i, subset in enumerate(order) if end in subset)
        dist = distances_to_accept(trans, accepting, cost)
        return cls(tuple(trans), accepting, tuple(dist))
