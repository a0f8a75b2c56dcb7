"""Live translations: the shipped catalogues, adding a language, and kv bindings that re-render."""

from __future__ import annotations

import gc
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from kivy.lang import Builder
from kivy.properties import ObjectProperty
from kivy.uix.label import Label

from kiosk.i18n import DOMAIN, Translator, available_languages, load_catalog, locale_dir

ROOT = Path(__file__).resolve().parent.parent
KIOSK = ROOT / "kiosk"
POT = KIOSK / "locale" / "balie.pot"
NL_PO = KIOSK / "locale" / "nl" / "LC_MESSAGES" / "balie.po"
PYBABEL = Path(sys.executable).parent / "pybabel"

DE_PO = r'''
msgid ""
msgstr ""
"Language: de\n"
"Content-Type: text/plain; charset=utf-8\n"

msgid "Skip"
msgstr "Überspringen"

#, python-brace-format
msgid "Question {n} of {total}"
msgstr "Frage {n} von {total}"

#, fuzzy
msgid "Send"
msgstr "Senden (ungeprüft)"

msgid "Yes"
msgstr ""
'''


def read_ids(path: Path) -> set[str]:
    with open(path, "rb") as handle:
        return {m.id for m in read_po(handle) if m.id}


def write_po(directory: Path, language: str, text: str) -> Path:
    path = directory / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tr():
    return Translator(locale_dir(), language="nl")


@pytest.fixture
def de_dir(tmp_path):
    write_po(tmp_path, "de", DE_PO)
    return tmp_path


# --------------------------------------------------------------------------- shipped catalogues


def test_the_shipped_dutch_catalogue_translates_known_ids(tr):
    assert tr.lang == "nl"
    assert tr._("Skip") == "Overslaan"
    assert tr._("Thank you!") == "Bedankt!"
    assert tr._("Question {n} of {total}").format(n=2, total=8) == "Vraag 2 van 8"


def test_every_message_id_in_the_template_has_a_dutch_translation():
    template = read_ids(POT)
    assert len(template) > 20  # the template really was read
    with open(NL_PO, "rb") as handle:
        dutch = {m.id: m for m in read_po(handle) if m.id}
    missing = sorted(template - dutch.keys())
    empty = sorted(i for i in template & dutch.keys() if not dutch[i].string.strip())
    fuzzy = sorted(i for i in template & dutch.keys() if dutch[i].fuzzy)
    assert (missing, empty, fuzzy) == ([], [], [])
    # and the translator serves every one of them, differently from the English id
    nl = Translator(locale_dir(), "nl")
    assert {i for i in template if nl._(i) == i} == set()


def test_english_shows_the_message_ids_themselves(tr):
    tr.switch("en")
    assert tr.lang == "en"
    for msgid in read_ids(POT):
        assert tr._(msgid) == msgid


def test_an_unknown_text_falls_back_to_itself_in_every_language(tr):
    assert tr._("Not in any catalogue") == "Not in any catalogue"


def test_the_shipped_languages_are_dutch_and_english(tr):
    assert tr.languages() == {"nl", "en"}


# --------------------------------------------------------------------------- adding a language


def test_a_language_is_added_by_dropping_a_po_file_into_the_locale_folder(de_dir):
    tr = Translator(de_dir, language="en")
    assert tr.languages() == {"de", "en"}
    assert available_languages(de_dir) == {"de", "en"}

    tr.switch("de")

    assert tr.lang == "de"
    assert tr._("Skip") == "Überspringen"
    assert tr._("Question {n} of {total}").format(n=1, total=3) == "Frage 1 von 3"


def test_fuzzy_and_untranslated_entries_fall_back_to_the_id(de_dir):
    assert load_catalog(de_dir / "de" / "LC_MESSAGES" / "balie.po") == {
        "Skip": "Überspringen", "Question {n} of {total}": "Frage {n} von {total}"}
    tr = Translator(de_dir, language="de")
    assert tr._("Send") == "Send"
    assert tr._("Yes") == "Yes"


def test_a_parsed_catalogue_is_kept_and_read_back_without_babel(de_dir, tmp_path, monkeypatch):
    import babel.messages.pofile as pofile

    po = de_dir / "de" / "LC_MESSAGES" / "balie.po"
    cache = tmp_path / "cache"
    first = load_catalog(po, cache)
    kept = list(cache.glob("balie-de-*.json"))
    assert first == load_catalog(po) and len(kept) == 1
    calls = []
    real = pofile.read_po
    monkeypatch.setattr(pofile, "read_po", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert load_catalog(po, cache) == first and calls == []          # from the cache
    # an edited .po has another hash: read again, kept again
    po.write_text(po.read_text(encoding="utf-8").replace("Überspringen", "Weiter"),
                  encoding="utf-8")
    assert load_catalog(po, cache)["Skip"] == "Weiter" and calls == [1]
    assert len(list(cache.glob("balie-de-*.json"))) == 2
    # a damaged cache file is read past, and replaced
    newest = max(cache.glob("balie-de-*.json"), key=lambda f: f.stat().st_mtime_ns)
    newest.write_text("{not json", encoding="utf-8")
    assert load_catalog(po, cache)["Skip"] == "Weiter" and calls == [1, 1]
    assert load_catalog(po, cache)["Skip"] == "Weiter" and calls == [1, 1]


def test_a_cache_that_cannot_be_written_only_costs_time(de_dir, tmp_path):
    po = de_dir / "de" / "LC_MESSAGES" / "balie.po"
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    assert load_catalog(po, blocked / "cache")["Skip"] == "Überspringen"
    tr = Translator(de_dir, language="de", cache_dir=blocked / "cache")
    assert tr._("Skip") == "Überspringen"


def test_switching_back_and_forth_uses_the_right_catalogue_each_time(de_dir):
    write_po(de_dir, "nl", NL_PO.read_text(encoding="utf-8"))
    tr = Translator(de_dir, language="nl")
    seen = []
    for language in ("de", "nl", "en", "de"):
        tr.switch(language)
        seen.append(tr._("Skip"))
    assert seen == ["Überspringen", "Overslaan", "Skip", "Überspringen"]


# --------------------------------------------------------------------------- observers


def test_switch_calls_kv_style_observers_with_args_none_none(tr):
    calls = []

    def kv_callback(*received):  # kivy/lang/builder.py: call_fn(args, instance, value)
        calls.append(received)

    args = ("label", "text", "tr._('Skip')", "rule", {})
    uid = tr.fbind("_", kv_callback, args)  # exactly as builder.py binds the last key
    assert uid

    tr.switch("en")
    tr.switch("nl")

    assert calls == [(args, None, None), (args, None, None)]


def test_funbind_stops_the_calls(tr):
    calls = []

    def callback(*received):
        calls.append(received)

    tr.fbind("_", callback, "x")
    tr.funbind("_", callback, "x")
    tr.switch("en")
    assert calls == []


def test_unbind_uid_stops_the_calls_as_kivy_does_when_it_rebinds(tr):
    calls = []
    keep = []
    uid = tr.fbind("_", lambda *a: calls.append("dropped"), ())
    tr.fbind("_", lambda *a: keep.append("kept"), ())

    tr.unbind_uid("_", uid)
    tr.switch("en")

    assert (calls, keep) == ([], ["kept"])


def test_lang_is_an_observable_kivy_property(tr):
    seen = []
    tr.bind(lang=lambda _tr, value: seen.append(value))
    tr.switch("en")
    tr.switch("nl")
    assert seen == ["en", "nl"]


# --------------------------------------------------------------------------- real kv rules


class TranslatedLabel(Label):
    """A label whose text comes from a kv rule on ``root.tr._``; counts its renders."""

    tr = ObjectProperty(None, allownone=True, rebind=True)
    renders = 0

    def shown(self, text: str) -> str:
        self.renders += 1
        return text


KV = """
<TranslatedLabel>:
    text: root.shown(root.tr._('Skip')) if root.tr else ''
"""


@pytest.fixture
def kv_rule():
    Builder.load_string(KV, filename="test_i18n_translated_label.kv")
    yield
    Builder.unload_file("test_i18n_translated_label.kv")


def test_a_kv_rule_on_tr_underscore_re_renders_when_the_language_switches(tr, kv_rule):
    label = TranslatedLabel(tr=tr)
    assert label.text == "Overslaan"

    renders = label.renders
    tr.switch("en")
    assert label.text == "Skip"

    tr.switch("nl")
    assert label.text == "Overslaan"
    assert label.renders == renders + 2  # one re-render per switch


def test_a_kv_label_follows_a_new_translator_and_the_old_one_lets_go(tr, de_dir, kv_rule):
    label = TranslatedLabel(tr=tr)
    german = Translator(de_dir, language="de")

    label.tr = german
    assert label.text == "Überspringen"
    german.switch("en")
    assert label.text == "Skip"

    # the old translator no longer drives the label: switching it renders nothing
    renders = label.renders
    tr.switch("en")
    tr.switch("nl")
    assert label.text == "Skip"
    assert label.renders == renders


def test_a_language_switch_after_a_bound_label_is_gone_still_works(tr, kv_rule):
    kept = TranslatedLabel(tr=tr)
    gone = TranslatedLabel(tr=tr)
    del gone
    gc.collect()

    tr.switch("en")  # must not raise ReferenceError for the collected label

    assert kept.text == "Skip"


def test_unbinding_a_kv_property_stops_its_updates(tr, kv_rule):
    label = TranslatedLabel(tr=tr)
    Builder.unbind_property(label, "text")
    renders = label.renders
    tr.switch("en")
    assert label.text == "Overslaan"
    assert label.renders == renders


# --------------------------------------------------------------------------- extraction


def extracted_ids(tmp_path: Path) -> set[str]:
    """Run the extraction of scripts/i18n into a temporary template and read its ids."""
    assert PYBABEL.is_file(), f"{PYBABEL} missing: babel is a dependency of the kiosk"
    out = tmp_path / "fresh.pot"
    script = (ROOT / "scripts" / "i18n").read_text(encoding="utf-8")
    assert "extract -F kiosk/locale/babel.cfg -k N_ --no-location --sort-output" in script
    subprocess.run(
        [str(PYBABEL), "extract", "-F", "kiosk/locale/babel.cfg", "-k", "N_", "--no-location",
         "--sort-output", "--project=balie", "-o", str(out), "."],
        cwd=ROOT, check=True, capture_output=True, timeout=120)
    return read_ids(out)


LITERAL_CALL = re.compile(r"""(?:\btr\._|\bN_)\(\s*(?P<q>['"])(?P<text>.*?)(?P=q)\s*\)""")


def literal_texts() -> dict[str, set[str]]:
    """Every ``tr._('...')`` / ``N_('...')`` literal in kiosk/ (.py and .kv), by file."""
    found = {}
    for path in sorted([*KIOSK.rglob("*.py"), *KIOSK.rglob("*.kv")]):
        texts = {m["text"] for m in LITERAL_CALL.finditer(path.read_text(encoding="utf-8"))}
        if texts:
            found[str(path.relative_to(ROOT))] = texts
    return found


def test_the_template_is_up_to_date_with_the_sources(tmp_path):
    fresh = extracted_ids(tmp_path)
    template = read_ids(POT)
    assert "Thank you!" in fresh  # found in thanks.kv: the .kv files are really scanned
    assert "Tap the face that fits" in fresh  # an N_() text in welcome.py
    assert sorted(fresh - template) == [], "new texts: run scripts/i18n and translate them"
    assert sorted(template - fresh) == [], "texts no longer used: run scripts/i18n"


def test_every_literal_text_in_kv_and_python_files_is_in_the_template():
    texts = literal_texts()
    kv_files = {str(p.relative_to(ROOT)) for p in (KIOSK / "ui").glob("*.kv")}
    assert len(kv_files & texts.keys()) >= 5  # the scan sees the kv files that hold texts
    template = read_ids(POT)
    missing = {f: sorted(t - template) for f, t in texts.items() if t - template}
    assert missing == {}
