"""What a value may become in card text. Every `{{ value }}` of the card templates passes through
here (the Jinja2 environments' `finalize`), so a string that came from a request or a FHIR server
can never become Markdown or HTML in a clinician's EHR, whichever template it reaches.

Markdown (detail): every character that could open markup is backslash-escaped, which CommonMark
renders as the character itself: `<` and `>` (HTML, autolinks), `[` `]` (links, images), `` ` ``,
`*`, `_`, `~`, `|` (a table cell), `&` (an entity) and `\\` itself; line breaks and other control
characters become spaces, so a value cannot start a block. The templates' own markup, and what the
service marks safe (its macros' output, the sources' URLs), pass as written.

Plain text (summary; CDS Hooks says plain text): control characters become spaces, and a `<` that
an HTML parser would read as a tag or comment gets a space after it, for the EHR that renders a
summary as HTML; nothing else changes ("<5 ng/mL" stays "<5 ng/mL").
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import Undefined
from markupsafe import Markup

_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~&])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPECIAL = re.compile(r"[\\`*_\[\]<>|~&\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")


# Markup built from text already safe, without Markup.__new__'s own check for __html__ (a third of
# this function's time: it runs for every value of every card).
_safe = str.__new__


def markdown(value: Any) -> Any:
    """A template value as Markdown text; Markup (the templates' own) as it is."""
    if type(value) is str:
        text = value
    elif isinstance(value, Markup):
        return value
    else:
        text = str(value)  # an Undefined raises here, as Jinja2's own escaping would
    if _SPECIAL.search(text) is None:  # most values: numbers, dates, names of the content
        return _safe(Markup, text)
    return _safe(Markup, _MARKDOWN.sub(r"\\\1", _CONTROL.sub(" ", text)))


def plain(value: Any) -> Any:
    """A template value as one line of plain text."""
    if isinstance(value, Undefined):
        return value
    return _TAG_OPEN.sub("< ", _CONTROL.sub(" ", str(value)))


def markdown_join(items: Any, separator: str = "") -> Markup:
    """Jinja2's `join` for Markdown templates: each item escaped as Markdown, not as HTML."""
    return Markup(separator).join(markdown(item) for item in items)
