"""On-device scrubbing of personal data in a visitor's free-text comment.

A visitor may add an optional comment to their feedback. Before that comment is
stored anywhere (including the local buffer), :func:`scrub` replaces personal
identifiers with neutral placeholders:

==============  ================  ============================================
category key    placeholder       what is recognised
==============  ================  ============================================
``"email"``     ``[e-mail]``      e-mail addresses (``+`` tags, sub-domains,
                                  any case)
``"iban"``      ``[IBAN]``        IBANs of any country, with or without
                                  spaces, any case, checked with
                                  ``stdnum.iban.is_valid``
``"bsn"``       ``[BSN]``         9-digit citizen service numbers passing the
                                  elfproef (``stdnum.nl.bsn.is_valid``),
                                  written as ``123456782``, ``1234.56.782``,
                                  ``123 456 782``, ``1234-56-782``,
                                  ``12 345 67 82`` (dots, spaces or dashes)
``"phone"``     ``[telefoon]``    Dutch and international phone numbers as
                                  people type them
==============  ================  ============================================

The placeholders are in Dutch (the language of the comment) and say nothing
about the visitor. They contain no digits and no ``@``, so scrubbing a scrubbed
text changes nothing.

Order matters. E-mail addresses go first (a local part may hold digits), then
IBANs (an IBAN holds long digit runs), then BSNs (a 9-digit number that passes
the elfproef is treated as a BSN, not a phone number), then phone numbers.
A 9-digit number failing the elfproef is left alone unless it is a phone
number. Postcodes, times, amounts, years, house numbers and other ordinary
numbers are kept. (A BSN-valid amount written "123.456.782" does become
``[BSN]``; privacy wins over such rare amounts.)

Phone numbers are found with ``phonenumbers.PhoneNumberMatcher`` (region
``"NL"``, leniency ``VALID``: ``POSSIBLE`` would also take arbitrary 9-digit
numbers). A regex fallback then catches common Dutch forms the matcher misses:
mobile numbers in ranges the metadata does not (yet) know, numbers glued to a
word ("06-12345678of"), and ``+``-prefixed international numbers. Two things
that look like phone numbers are kept: a date followed by a time
("06-03-2024 10.30") and a municipality's "14" short number ("14 071").

The text is also normalised a little: whitespace runs become one space, control
and invisible format characters are removed (except the zero-width joiner used
in emoji) and the result is stripped. Otherwise the text is kept as typed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher
from stdnum import iban as _iban
from stdnum.nl import bsn as _bsn

__all__ = ["PLACEHOLDERS", "ScrubResult", "scrub"]

PLACEHOLDERS: dict[str, str] = {
    "bsn": "[BSN]",
    "phone": "[telefoon]",
    "email": "[e-mail]",
    "iban": "[IBAN]",
}

_REGION = "NL"
_LENIENCY = Leniency.VALID
# Each pass only removes digits or "@", so the fixpoint loop ends quickly; the
# bound is a safety net.
_MAX_ROUNDS = 5


@dataclass(frozen=True)
class ScrubResult:
    """Outcome of :func:`scrub`.

    ``text`` is the normalised, scrubbed comment. ``found`` counts replacements
    per category (keys among ``"bsn"``, ``"phone"``, ``"email"``, ``"iban"``;
    categories with no hits are absent).
    """

    text: str
    found: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """True if anything was replaced by a placeholder."""
        return bool(self.found)


# --------------------------------------------------------------------------
# Normalisation

_WS_RE = re.compile(r"\s+")
_ZWJ = "\u200d"


def _normalise(text: str) -> str:
    # Whitespace first, so a newline or tab becomes a space instead of gluing
    # two words (or two digit groups) together.
    text = _WS_RE.sub(" ", text)
    text = "".join(
        ch
        for ch in text
        if ch == _ZWJ or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    return _WS_RE.sub(" ", text).strip()


# --------------------------------------------------------------------------
# E-mail

_EMAIL_RE = re.compile(
    r"(?<![\w.%+\-@])"
    r"[\w%+\-]+(?:\.[\w%+\-]+)*"  # local part, dots not leading/trailing/double
    r"@"
    r"(?:[^\W_](?:[\w\-]*[^\W_])?\.)+"  # (sub)domain labels
    r"[^\W\d_]{2,}"  # top-level domain: letters only
    r"(?![\w\-]*@)",
)


# --------------------------------------------------------------------------
# IBAN

# Candidate: 2 letters + 2 check digits, then at least 11 more alphanumerics,
# optionally separated by single spaces (the printed 4-groups). The candidate
# may swallow following words; the longest prefix that ends at a token
# boundary and validates wins.
_IBAN_CANDIDATE_RE = re.compile(
    r"(?<![A-Za-z])[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,40}"
)
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _sub_iban(text: str, found: dict[str, int]) -> str:
    out: list[str] = []
    pos = 0
    search_from = 0
    while True:
        m = _IBAN_CANDIDATE_RE.search(text, search_from)
        if m is None:
            break
        start, cand = m.start(), m.group()
        end = None
        # Try ends from longest to shortest; an end must not split a token.
        for i in range(len(cand), 14, -1):
            if cand[i - 1] == " ":
                continue
            nxt = text[start + i] if start + i < len(text) else ""
            if nxt in _ALNUM:
                continue
            if _iban.is_valid(cand[:i]):
                end = start + i
                break
        if end is None:
            search_from = start + 1
            continue
        out.append(text[pos:start])
        out.append(PLACEHOLDERS["iban"])
        found["iban"] = found.get("iban", 0) + 1
        pos = search_from = end
    out.append(text[pos:])
    return "".join(out)


# --------------------------------------------------------------------------
# BSN

_BSN_RE = re.compile(
    r"(?<![\d+])"  # not the tail of a longer digit run
    r"(?:\d{9}"  # 123456782
    r"|\d{4}[ .\-]\d{2}[ .\-]\d{3}"  # 1234.56.782 (official notation)
    r"|\d{3}[ .\-]\d{3}[ .\-]\d{3}"  # 123 456 782
    r"|\d{2}[ .\-]\d{3}[ .\-]\d{2}[ .\-]\d{2})"  # 12 345 67 82
    r"(?!\d)"  # not the head of a longer digit run
)
# Digits right before a candidate that make it part of a phone number written
# with a country code ("+31 612345678", "0031 (0) 612345678").
_COUNTRY_PREFIX_RE = re.compile(r"(?:\+|\b00)\d{1,3}[ .\-]*(?:\(0\)[ .\-]*)?$")


def _sub_bsn(text: str, found: dict[str, int]) -> str:
    # Candidates may overlap ("2351 15 033 155 896" holds the invalid
    # "2351 15 033" and the valid "033 155 896"), so a candidate that is not a
    # BSN only moves the search on by one character, not past itself.
    out: list[str] = []
    pos = search_from = 0
    while (m := _BSN_RE.search(text, search_from)) is not None:
        is_bsn = _bsn.is_valid(m.group()) and not _COUNTRY_PREFIX_RE.search(
            text, max(0, m.start() - 12), m.start())  # after a country code: a phone number
        if not is_bsn:
            search_from = m.start() + 1
            continue
        out.append(text[pos:m.start()])
        out.append(PLACEHOLDERS["bsn"])
        found["bsn"] = found.get("bsn", 0) + 1
        pos = search_from = m.end()
    out.append(text[pos:])
    return "".join(out)


# --------------------------------------------------------------------------
# Phone

_SEP = r"[ \-./\u2010-\u2015]"  # separators people type, incl. dashes
_S = _SEP + r"?"
_SS = _SEP + r"{0,3}"

# Dutch mobile: 06 + 8 digits in the usual groupings, with an optional
# country code instead of the trunk 0.
_NL_MOBILE = (
    r"(?:(?:\+|00)31" + _SS + r"(?:\(0\)" + _SS + r")?0?6|\(?06\)?)" + _SS
    + r"(?:\d{8}"
    r"|\d{4}" + _S + r"\d{4}"
    r"|\d{2}" + _S + r"\d{2}" + _S + r"\d{2}" + _S + r"\d{2}"
    r"|\d{3}" + _S + r"\d{3}" + _S + r"\d{2}"
    r"|\d{2}" + _S + r"\d{3}" + _S + r"\d{3})"
)
# Dutch geographic and other 10-digit numbers: area code (3 or 4 digits incl.
# trunk 0), then the subscriber number, as one block or in groups.
_NL_FIXED = (
    r"(?:\(0\d{2}\)|0[1-57-9]\d)" + _SS
    + r"(?:\d{7}|\d{3}" + _S + r"\d{4}|\d{3}" + _S + r"\d{2}" + _S + r"\d{2})"
    r"|(?:\(0\d{3}\)|0[1-57-9]\d{2})" + _SS
    + r"(?:\d{6}|\d{3}" + _S + r"\d{3}|\d{2}" + _S + r"\d{2}" + _S + r"\d{2})"
)
# International, "+" prefixed: 8 to 15 digits in groups. Nobody writes other
# things that way.
_INTL = r"\+\d{1,3}" + _SS + r"(?:\(0\)" + _SS + r")?\d(?:" + _S + r"\d){6,13}"

_PHONE_FALLBACK_RE = re.compile(
    r"(?<![\d+])(?:" + _NL_MOBILE + r"|" + _NL_FIXED + r"|" + _INTL + r")(?!\d)"
)


# A date followed by a time ("06-03-2024 10.30") reads as a mobile number.
_DATE_RE = re.compile(
    r"\(?(?:0?[1-9]|[12]\d|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:19|20)\d{2}(?!\d)"
)


def _is_municipal_short_number(number: phonenumbers.PhoneNumber) -> bool:
    # "14 071": the 14 + area code number of a municipality. Not personal,
    # and visitors refer to it ("ik had eerst 14 071 gebeld").
    nn = str(number.national_number)
    return number.country_code == 31 and nn.startswith("14") and len(nn) <= 6


def _sub_phone(text: str, found: dict[str, int]) -> str:
    if not any(ch.isdigit() for ch in text):
        return text
    spans = [
        (m.start, m.end)
        for m in PhoneNumberMatcher(text, _REGION, leniency=_LENIENCY)
        if not _DATE_RE.match(m.raw_string)
        and not _is_municipal_short_number(m.number)
    ]
    if spans:
        out: list[str] = []
        pos = 0
        for start, end in spans:
            out.append(text[pos:start])
            out.append(PLACEHOLDERS["phone"])
            pos = end
        out.append(text[pos:])
        text = "".join(out)
        found["phone"] = found.get("phone", 0) + len(spans)

    def repl(m: re.Match[str]) -> str:
        if _DATE_RE.match(m.group()):
            return m.group()
        found["phone"] = found.get("phone", 0) + 1
        return PLACEHOLDERS["phone"]

    return _PHONE_FALLBACK_RE.sub(repl, text)


# --------------------------------------------------------------------------
# Public API


def _scrub_once(text: str, found: dict[str, int]) -> str:
    if "@" in text:
        text = _EMAIL_RE.sub(lambda m: _count(found, "email"), text)
    if not any(ch.isdigit() for ch in text):
        return text
    text = _sub_iban(text, found)
    text = _sub_bsn(text, found)
    return _sub_phone(text, found)


def _count(found: dict[str, int], key: str) -> str:
    found[key] = found.get(key, 0) + 1
    return PLACEHOLDERS[key]


def scrub(text: str) -> ScrubResult:
    """Normalise ``text`` and replace personal identifiers by placeholders.

    Returns a :class:`ScrubResult`; ``found`` counts the replacements per
    category. The result is a fixpoint: ``scrub(scrub(t).text).text ==
    scrub(t).text`` and that second call reports nothing found.
    """
    text = _normalise(text)
    found: dict[str, int] = {}
    # A replacement can expose a new boundary (e.g. "123456782NL91..." only
    # shows the IBAN once the BSN before it is gone), so repeat until stable.
    for _ in range(_MAX_ROUNDS):
        new = _scrub_once(text, found)
        if new == text:
            break
        text = new
    return ScrubResult(text=text, found=found)


# Load the phone metadata for the regions we meet most at import time, not on
# the first visitor's comment (the UI thread must not stall).
for _region in ("NL", "BE", "DE", "GB", "FR", "US"):
    phonenumbers.PhoneMetadata.metadata_for_region(_region)
scrub("+31 6 12345678 0031 20 1234567 +32 470 12 34 56")
del _region
