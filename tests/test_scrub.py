"""Behaviour of kiosk.scrub: personal data in a visitor comment becomes a placeholder."""

from __future__ import annotations

import pytest
from stdnum import iban as stdnum_iban
from stdnum.nl import bsn as stdnum_bsn

from kiosk.scrub import PLACEHOLDERS, ScrubResult, scrub

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the test extras
    given = None


def _elfproef_complete(first_eight: str) -> str:
    """Append the check digit that makes ``first_eight`` a valid BSN."""
    weights = range(9, 1, -1)
    total = sum(int(d) * w for d, w in zip(first_eight, weights))
    # sum(9..2 weighted) - last digit must be divisible by 11
    check = total % 11
    assert check < 10, "no valid check digit for this prefix"
    return first_eight + str(check)


# Valid BSNs, computed with the elfproef above and cross-checked below.
BSN_A = _elfproef_complete("12345678")  # 123456782
BSN_B = _elfproef_complete("23456789")  # 234567892
BSN_C = _elfproef_complete("98765432")  # 987654329
BSN_D = _elfproef_complete("11122233")  # 111222333
# Nine digits that fail the elfproef.
NOT_BSN = ["123456783", "123456789", "987654321", "111111111"]


def test_computed_bsn_examples_pass_and_fail_the_elfproef_as_intended():
    assert (BSN_A, BSN_B, BSN_C, BSN_D) == (
        "123456782",
        "234567892",
        "987654329",
        "111222333",
    )
    for number in (BSN_A, BSN_B, BSN_C, BSN_D):
        assert stdnum_bsn.is_valid(number)
    for number in NOT_BSN:
        assert not stdnum_bsn.is_valid(number)


def test_iban_examples_are_valid_and_typo_is_not():
    for number in (
        "NL91ABNA0417164300",
        "NL20INGB0001234567",
        "BE71096123456769",
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "FR1420041010050500013M02606",
    ):
        assert stdnum_iban.is_valid(number)
    assert not stdnum_iban.is_valid("NL91ABNA0417164301")


# --------------------------------------------------------------------------
# API


def test_result_has_text_found_and_changed():
    r = scrub("Bel me op 06-12345678")
    assert r == ScrubResult(text="Bel me op [telefoon]", found={"phone": 1})
    assert r.text == "Bel me op [telefoon]"
    assert r.found == {"phone": 1}
    assert r.changed is True


def test_clean_comment_is_unchanged_and_reports_nothing():
    r = scrub("Heel vriendelijk geholpen, dank jullie wel!")
    assert r.text == "Heel vriendelijk geholpen, dank jullie wel!"
    assert r.found == {}
    assert r.changed is False


def test_placeholders_are_the_documented_ones():
    assert PLACEHOLDERS == {
        "bsn": "[BSN]",
        "phone": "[telefoon]",
        "email": "[e-mail]",
        "iban": "[IBAN]",
    }


def test_empty_and_whitespace_only_comment_becomes_empty_text():
    assert scrub("") == ScrubResult(text="", found={})
    assert scrub(" \n\t ") == ScrubResult(text="", found={})


# --------------------------------------------------------------------------
# BSN


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        (f"Mijn BSN is {BSN_A}.", "Mijn BSN is [BSN]."),
        ("Mijn BSN is 1234.56.782, klopt dat?", "Mijn BSN is [BSN], klopt dat?"),
        ("bsn: 123 456 782", "bsn: [BSN]"),
        ("burgerservicenummer 1234-56-782 graag", "burgerservicenummer [BSN] graag"),
        ("Ze vroeg naar 2345.67.892 (mijn bsn)", "Ze vroeg naar [BSN] (mijn bsn)"),
        (f"nummer {BSN_C}", "nummer [BSN]"),
        (f"BSN:{BSN_D}", "BSN:[BSN]"),
        ("Mijn bsn 12 345 67 82 stond verkeerd", "Mijn bsn [BSN] stond verkeerd"),
        (f"bsn {BSN_A} 2 keer gevraagd", "bsn [BSN] 2 keer gevraagd"),
        (f"om 10.30 {BSN_A}", "om 10.30 [BSN]"),
    ],
)
def test_elfproef_valid_bsn_is_replaced_in_written_forms(comment, expected):
    assert scrub(comment) == ScrubResult(text=expected, found={"bsn": 1})


@pytest.mark.parametrize("number", NOT_BSN + ["1234.56.783", "123 456 789"])
def test_nine_digits_failing_the_elfproef_are_left_alone(number):
    comment = f"Mijn klantnummer is {number} toch?"
    assert scrub(comment) == ScrubResult(text=comment, found={})


def test_bsn_inside_a_longer_digit_run_is_not_a_bsn():
    # 10 and 11 digits containing a valid BSN: not a BSN. (The 10-digit one
    # starting with 0 is a Dutch phone number, not a BSN.)
    assert scrub(f"code 9{BSN_A}9").found.get("bsn") is None
    assert scrub(f"code 0{BSN_A}") == ScrubResult(text="code [telefoon]", found={"phone": 1})


def test_valid_bsn_is_a_bsn_not_a_phone_number():
    assert scrub(BSN_B) == ScrubResult(text="[BSN]", found={"bsn": 1})


def test_nine_digits_after_a_country_code_are_a_phone_number():
    # Even when the last nine digits happen to pass the elfproef.
    assert scrub(f"bel +31 {BSN_A}") == ScrubResult(
        text="bel [telefoon]", found={"phone": 1}
    )


# --------------------------------------------------------------------------
# Phone numbers


@pytest.mark.parametrize(
    "number",
    [
        "06-12345678",
        "06 1234 5678",
        "06 12 34 56 78",
        "0612345678",
        "06-123 456 78",
        "(06) 12345678",
        "06/12345678",
        "06.12.34.56.78",
        "+31 6 12345678",
        "+31612345678",
        "+31 (0)6 12345678",
        "+31 6-123 456 78",
        "0031612345678",
        "0031 6 1234 5678",
        "020-1234567",
        "020 123 4567",
        "(020) 123 45 67",
        "010 - 123 45 67",
        "071-5123456",
        "0715123456",
        "071 512 34 56",
        "+31 20 123 4567",
        "+31(0)20-1234567",
        "085-1234567",
        "0800-1234",
        "0900-1234567",
        "+32 470 12 34 56",
        "+49 30 123456",
        "+44 20 7946 0958",
        "+1 212 555 0199",
    ],
)
def test_phone_number_in_a_sentence_is_replaced(number):
    comment = f"Bel me gerust op {number} als er iets is."
    assert scrub(comment) == ScrubResult(
        text="Bel me gerust op [telefoon] als er iets is.", found={"phone": 1}
    )


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("Mijn nummer: 06-12345678.", "Mijn nummer: [telefoon]."),
        ("tel:0612345678", "tel:[telefoon]"),
        ("(bereikbaar op 06 12345678)", "(bereikbaar op [telefoon])"),
        # Glued to a word: the matcher skips it, the fallback does not.
        ("bel 06-12345678of mail", "bel [telefoon]of mail"),
        # A 06 range the phone metadata does not know (yet).
        ("mijn 06 98765432 werkt", "mijn [telefoon] werkt"),
        # Typed with an en dash.
        ("bel 06–12345678", "bel [telefoon]"),
    ],
)
def test_phone_number_edge_forms_are_replaced(comment, expected):
    assert scrub(comment) == ScrubResult(text=expected, found={"phone": 1})


def test_municipal_short_number_is_kept():
    comment = "Ik had eerst 14 071 gebeld maar kreeg niemand."
    assert scrub(comment) == ScrubResult(text=comment, found={})


def test_date_followed_by_time_is_not_a_phone_number():
    for comment in (
        "Op 06-03-2024 10.30 uur was ik hier.",
        "Afspraak 06-12-2024 12.00 liep uit.",
    ):
        assert scrub(comment) == ScrubResult(text=comment, found={})


# --------------------------------------------------------------------------
# E-mail


@pytest.mark.parametrize(
    "address",
    [
        "jan@example.nl",
        "j.de.vries@gemeente.example.nl",
        "Jan.Jansen+balie@Example.COM",
        "PIETJE.PUK@HOTMAIL.NL",
        "anne_marie-1978@mail.sub.example.org",
        "jan0612345678@ziggo.nl",
        "josé@exämple.nl",
    ],
)
def test_email_address_in_a_sentence_is_replaced(address):
    comment = f"Mail mij op {address} voor een reactie."
    assert scrub(comment) == ScrubResult(
        text="Mail mij op [e-mail] voor een reactie.", found={"email": 1}
    )


def test_email_at_end_of_sentence_keeps_the_full_stop():
    assert scrub("mijn mail is jan@example.nl.") == ScrubResult(
        text="mijn mail is [e-mail].", found={"email": 1}
    )


def test_at_sign_without_address_is_kept():
    comment = "Wachttijd @ loket 3 was 20 min"
    assert scrub(comment) == ScrubResult(text=comment, found={})


# --------------------------------------------------------------------------
# IBAN


@pytest.mark.parametrize(
    "number",
    [
        "NL91 ABNA 0417 1643 00",
        "NL91ABNA0417164300",
        "nl91abna0417164300",
        "nl91 abna 0417 1643 00",
        "NL20INGB0001234567",
        "BE71 0961 2345 6769",
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "FR14 2004 1010 0505 0001 3M02 606",
    ],
)
def test_iban_in_a_sentence_is_replaced(number):
    comment = f"Het geld moet naar {number} graag."
    assert scrub(comment) == ScrubResult(
        text="Het geld moet naar [IBAN] graag.", found={"iban": 1}
    )


def test_iban_followed_by_punctuation_and_words():
    assert scrub("rekening NL91 ABNA 0417 1643 00, niet terugbetaald") == ScrubResult(
        text="rekening [IBAN], niet terugbetaald", found={"iban": 1}
    )


def test_iban_digits_are_not_taken_for_bsn_or_phone():
    # The account part "0417164300" alone would be a phone number.
    assert scrub("NL91ABNA0417164300") == ScrubResult(text="[IBAN]", found={"iban": 1})


def test_iban_glued_to_a_bsn_is_still_found():
    assert scrub(f"{BSN_A}NL91ABNA0417164300") == ScrubResult(
        text="[BSN][IBAN]", found={"bsn": 1, "iban": 1}
    )


def test_iban_like_text_failing_the_check_is_not_an_iban():
    comment = "code AB12 CDEF GHIJ KLMN"
    assert scrub(comment) == ScrubResult(text=comment, found={})


# --------------------------------------------------------------------------
# Several items


def test_several_items_in_one_comment_are_counted_per_category():
    comment = (
        "Ik ben gebeld op 06-12345678 en later op 020-1234567. "
        f"Mijn BSN {BSN_A} en die van mijn partner 2345.67.892 stonden erin. "
        "Terugstorten op NL91 ABNA 0417 1643 00 en bevestiging naar "
        "jan@example.nl of Partner+gemeente@Example.NL. Mijn nummer 06 1234 5678."
    )
    assert scrub(comment) == ScrubResult(
        text=(
            "Ik ben gebeld op [telefoon] en later op [telefoon]. "
            "Mijn BSN [BSN] en die van mijn partner [BSN] stonden erin. "
            "Terugstorten op [IBAN] en bevestiging naar "
            "[e-mail] of [e-mail]. Mijn nummer [telefoon]."
        ),
        found={"phone": 3, "bsn": 2, "iban": 1, "email": 2},
    )


def test_items_next_to_each_other_are_each_replaced():
    assert scrub(f"{BSN_A}, 0612345678, NL20INGB0001234567, a@b.nl") == ScrubResult(
        text="[BSN], [telefoon], [IBAN], [e-mail]",
        found={"bsn": 1, "phone": 1, "iban": 1, "email": 1},
    )


# --------------------------------------------------------------------------
# Innocent numbers survive


@pytest.mark.parametrize(
    "comment",
    [
        "wachttijd 15 minuten",
        "om 10.30 uur",
        "cijfer 8",
        "huisnummer 12a",
        "2024",
        "€ 75,50",
        "postcode 2351 AB",
        "Ik woon op 2351 AB 12 en kwam om 10.30 uur.",
        "Wachttijd 15 minuten, daarna in 5 min geholpen. Cijfer 8!",
        "Betaald € 1.234,50 voor paspoort en ID-kaart (2 stuks) in 2024",
        "van 08.30 tot 17.00 open, loket 4, kamer 1.23",
        "openingstijden 9:00-17:00, 15-20 minuten",
        "zaaknummer 2024-0012345",
        "5 sterren, 10/10, 100% tevreden",
        "Op 12-03-2024 was het druk",
        "12345678",
        "bel 112 als het moet",
    ],
)
def test_ordinary_numbers_are_kept(comment):
    assert scrub(comment) == ScrubResult(text=comment, found={})


# --------------------------------------------------------------------------
# Normalisation


def test_whitespace_is_collapsed_and_stripped():
    assert scrub("  Lang   gewacht,\n\nmaar\tgoed geholpen.  ").text == (
        "Lang gewacht, maar goed geholpen."
    )


def test_control_and_invisible_characters_are_removed():
    assert scrub("goed\x00 ge\x07holpen\u200b!\x1b").text == "goed geholpen!"


def test_non_breaking_spaces_inside_a_number_do_not_hide_it():
    assert scrub("bel 06\u00a01234\u00a05678") == ScrubResult(
        text="bel [telefoon]", found={"phone": 1}
    )


def test_zero_width_space_inside_a_number_does_not_hide_it():
    assert scrub(f"bsn {BSN_A[:4]}\u200b{BSN_A[4:]}") == ScrubResult(
        text="bsn [BSN]", found={"bsn": 1}
    )


def test_text_is_otherwise_kept_as_typed():
    comment = "Héél fijn 👍👩‍💻 — bedankt!! «top» (Loket B)"
    assert scrub(comment) == ScrubResult(text=comment, found={})


# --------------------------------------------------------------------------
# Idempotence


@pytest.mark.parametrize(
    "comment",
    [
        "Bel me op 06-12345678",
        f"bsn {BSN_A}, iban NL91 ABNA 0417 1643 00, mail a@b.nl, tel +32 470 12 34 56",
        f"{BSN_A}NL91ABNA0417164300",
        "  wachttijd   15 minuten\n",
        "[BSN] [telefoon] [e-mail] [IBAN]",
    ],
)
def test_scrubbing_scrubbed_text_changes_nothing(comment):
    once = scrub(comment)
    twice = scrub(once.text)
    assert twice == ScrubResult(text=once.text, found={})


# --------------------------------------------------------------------------
# Properties

if given is not None:
    _alphabet = st.sampled_from(
        list("0123456789") * 4
        + list(" .-+@()/,:")
        + list("abcNLABNAxyz")
        + ["\n", "\t", "\x00", "\u200b", "\u00a0", "é"]
    )
    _words = st.lists(
        st.sampled_from(
            ["wachttijd", "15", "minuten", "om", "10.30", "uur", "cijfer", "8", "loket", "2024", "€ 75,50", "2351 AB"]
        ),
        max_size=8,
    ).map(" ".join)

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=_alphabet, max_size=80))
    def test_property_scrub_is_idempotent_and_output_is_normalised(comment):
        once = scrub(comment)
        assert scrub(once.text) == ScrubResult(text=once.text, found={})
        assert once.text == once.text.strip()
        assert "  " not in once.text
        assert not any(ch in once.text for ch in "\n\t\x00\u200b")
        assert set(once.found) <= {"bsn", "phone", "email", "iban"}
        assert all(n > 0 for n in once.found.values())
        assert once.changed == bool(once.found)

    @settings(max_examples=200, deadline=None)
    @given(
        st.text(alphabet="0123456789", min_size=8, max_size=8).filter(
            lambda p: p != "00000000" and sum(int(d) * w for d, w in zip(p, range(9, 1, -1))) % 11 < 10
        ),
        st.sampled_from(["{}", "{0}{1}.{2}.{3}", "{0} {1} {2}", "{0}-{1}-{2}"]),
        _words,
        _words,
    )
    def test_property_any_valid_bsn_in_ordinary_text_is_replaced(prefix, form, before, after):
        number = _elfproef_complete(prefix)
        if form == "{}":
            written = number
        elif form.startswith("{0}{1}"):
            written = f"{number[:4]}.{number[4:6]}.{number[6:]}"
        else:
            sep = form[3]
            written = sep.join((number[:3], number[3:6], number[6:]))
        # Letter words around the number: digits of a neighbouring word written
        # right next to it ("15 123 456 782") make the grouping itself ambiguous.
        comment = " ".join(part for part in (before, "nummer", written, "graag", after) if part)
        r = scrub(comment)
        assert r.found == {"bsn": 1}
        assert r.text == " ".join(part for part in (before, "nummer", "[BSN]", "graag", after) if part)

    @settings(max_examples=200, deadline=None)
    @given(st.text(alphabet="0123456789", min_size=8, max_size=8), _words, _words)
    def test_property_any_dutch_mobile_number_is_replaced(digits, before, after):
        written = f"06-{digits}"
        comment = " ".join(part for part in (before, written, after) if part)
        r = scrub(comment)
        assert r.found == {"phone": 1}
        assert r.text == " ".join(part for part in (before, "[telefoon]", after) if part)

    @settings(max_examples=200, deadline=None)
    @given(_words)
    def test_property_ordinary_words_and_numbers_survive(comment):
        assert scrub(comment) == ScrubResult(text=comment, found={})


@pytest.mark.parametrize("comment, expected", [
    ("2351 15 033 155 896 om wachttijd", "2351 15 [BSN] om wachttijd"),
    ("2024 15 772 790 553 75,50 huisnummer AB", "2024 15 [BSN] 75,50 huisnummer AB"),
    ("2351 15 024-224-005", "2351 15 [BSN]"),
])
def test_a_bsn_right_after_other_numbers_is_still_found(comment, expected):
    # An invalid candidate made of the numbers before it ("2351 15 033") must
    # not hide the valid BSN that overlaps it.
    assert scrub(comment).text == expected
