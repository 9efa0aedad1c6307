"""Finding the content's names in medicine text as whole words (docs/clinical-rules.md, "Medicines
in text").

Text is cut into words first (letters and digits, and the signs + and &), and names are matched as
runs of whole words: "D" in "Vit D" is a word, the "d" of "lidocaine" is not, and "D-Vi-Sol" is the
words d, vi, sol whichever way it is punctuated. Matching walks a tree of the names' words from each
word of the text, never further than the longest name: linear in the text, whatever it holds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")

_DROPPED = frozenset({"Mn", "Cf"})  # combining marks (accents), and format characters (zero-width)
_WORD = re.compile(r"[^\W_]+|[+&]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # "50,000" is one number, as "50000"


def words(text: str) -> tuple[str, ...]:
    """The words of a text, lower case: "Os-Cal 500 + D" -> ("os", "cal", "500", "+", "d"). Text
    that is not ASCII is folded first: full-width and sub- or superscript forms to their letters
    and digits, accents and invisible characters dropped ("ｖｉｔ Ｄ₃", "cholecalciférol",
    "chole\u200bcalciferol")."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) not in _DROPPED)
    text = text.lower()
    return tuple(_WORD.findall(_THOUSANDS.sub("", text) if "," in text else text))


class Match(NamedTuple, Generic[T]):
    start: int  # the first word matched
    end: int  # one past the last
    item: T


class _Node(Generic[T]):
    __slots__ = ("children", "items")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.items: list[T] = []  # of the names that end here


class TermIndex(Generic[T]):
    """Names -> items, matched as whole words. A name may carry several items (one name in several
    lists); `find_all` gives every name found, and the caller keeps the longest it needs."""

    def __init__(self, names: Iterable[tuple[str, T]]) -> None:
        self._tree: _Node[T] = _Node()
        self._depth = 0
        for name, item in names:
            name_words = words(name)
            if not name_words:
                continue
            node = self._tree
            for word in name_words:
                node = node.children.setdefault(word, _Node())
            node.items.append(item)
            self._depth = max(self._depth, len(name_words))

    def find_all(self, text: Sequence[str]) -> list[Match[T]]:
        """Every name found in the words `text`, by start, then shortest first."""
        found: list[Match[T]] = []
        for start in range(len(text)):
            node = self._tree
            for end in range(start, min(len(text), start + self._depth)):
                child = node.children.get(text[end])
                if child is None:
                    break
                node = child
                found.extend(Match(start, end + 1, item) for item in node.items)
        return found
