"""The rules for a message to visitors' text, checked by central when it is set and by the terminal when it arrives.

Use::

    problem = text_problem(" Wij bellen u binnen 2 werkdagen terug. ")
    problem                      # None: fine; else one sentence saying what is wrong
    clean_text("  Wij ...  ")    # the text as stored and shown: surrounding spaces removed

A text is one line of plain text: 1 to :data:`~sync.limits.MAX_MESSAGE_CHARS`
characters after trimming, no control characters (so no NUL and no line
breaks), and no markup: ``<`` ``>`` (HTML) and ``[`` ``]`` (Kivy markup) are
refused rather than escaped, so what the municipality types is exactly what a
visitor reads.
"""

from __future__ import annotations

import unicodedata

from sync.limits import MAX_MESSAGE_CHARS

#: Characters that start or end markup (HTML tags, Kivy's [b]...[/b]).
MARKUP_CHARS = "<>[]"


def clean_text(text: str) -> str:
    """``text`` with surrounding white space removed (as stored and shown)."""
    return text.strip()


def text_problem(text: object) -> str | None:
    """Why ``text`` cannot be shown to visitors, or ``None`` when it can (checked after trimming)."""
    if not isinstance(text, str):
        return f"must be text, got {type(text).__name__}"
    text = clean_text(text)
    if not text:
        return "must not be empty"
    if len(text) > MAX_MESSAGE_CHARS:
        return f"at most {MAX_MESSAGE_CHARS} characters, got {len(text)}"
    for index, char in enumerate(text, start=1):
        if unicodedata.category(char) in ("Cc", "Cs") or char in "\u2028\u2029":
            what = "a NUL character" if char == "\x00" else (
                "a line break" if char in "\r\n\u2028\u2029" else f"control character U+{ord(char):04X}")
            return f"character {index} is {what}; a message is one line of plain text"
        if char in MARKUP_CHARS:
            return (f"character {index} is {char!r}: no markup (HTML or [b]-style tags); "
                    "a message is plain text")
    return None
