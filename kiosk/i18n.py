"""Live-switchable translations for the visitor-facing texts (gettext ``.po`` files).

Use::

    tr = Translator(locale_dir(), language="nl")
    tr._("Skip")          # -> "Overslaan"
    tr.switch("en")       # every kv binding on ``tr._`` re-evaluates at once

In kv, bind through the app: ``text: app.tr._("Skip")``. Message ids are the
English texts; a language is added by dropping ``<lang>/LC_MESSAGES/balie.po``
into the locale folder (extract new ids with ``scripts/i18n``). English needs
no file: a missing translation falls back to the message id.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po
from kivy.event import EventDispatcher
from kivy.properties import StringProperty

DOMAIN = "balie"

#: How each language names itself on the language switch.
AUTONYMS = {
    "nl": "Nederlands",
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "tr": "Türkçe",
    "ar": "العربية",
    "pl": "Polski",
    "uk": "Українська",
}


def locale_dir() -> Path:
    """The folder with the shipped ``.po`` files."""
    return Path(__file__).resolve().parent / "locale"


def load_catalog(path: Path) -> dict[str, str]:
    """Read one ``.po`` file into ``{msgid: msgstr}``, leaving out untranslated and fuzzy entries."""
    with open(path, "rb") as handle:
        catalog = read_po(handle)
    return {
        message.id: message.string
        for message in catalog
        if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
    }


def available_languages(directory: Path) -> set[str]:
    """Languages that have a catalogue in ``directory``, plus English (the message ids)."""
    found = {p.parent.parent.name for p in directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po")}
    return found | {"en"}


class Translator(EventDispatcher):
    """An observable ``_()``: kv rules that call ``tr._(...)`` re-render on :meth:`switch`.

    The kv compiler binds to the attribute ``_``; :meth:`fbind` keeps those
    callbacks, :meth:`switch` calls them (the pattern of
    tito/kivy-gettext-example) and :meth:`unbind_uid` drops them again, as
    the kv compiler does when a rule is rebound or unbound. ``lang`` is also
    a normal Kivy property for Python code that wants to listen.
    """

    lang = StringProperty("nl")

    def __init__(self, directory: Path, language: str = "nl", **kwargs):
        super().__init__(**kwargs)
        self._directory = Path(directory)
        self._catalogs: dict[str, dict[str, str]] = {}
        self._observers: dict[int, tuple] = {}  # uid -> (func, largs, kwargs)
        self._last_uid = 0
        self._current: dict[str, str] = {}
        self.switch(language)

    def _(self, text: str) -> str:
        """Translate ``text`` into the current language (the id itself when untranslated)."""
        return self._current.get(text, text)

    def languages(self) -> set[str]:
        """Languages this translator can show."""
        return available_languages(self._directory)

    def switch(self, language: str) -> None:
        """Make ``language`` current and re-render every bound text."""
        if language not in self._catalogs:
            path = self._directory / language / "LC_MESSAGES" / f"{DOMAIN}.po"
            self._catalogs[language] = load_catalog(path) if path.is_file() else {}
        self._current = self._catalogs[language]
        self.lang = language
        for uid, (func, largs, _kwargs) in list(self._observers.items()):
            # The kv compiler binds with ``fbind("_", fn, args)`` and its
            # callbacks take ``(args, instance, value)``.
            try:
                func(*largs, None, None)
            except ReferenceError:
                # The widget that bound it is gone (kv holds it by weak proxy);
                # Kivy's own properties drop such observers silently too.
                self._observers.pop(uid, None)

    def fbind(self, name, func, *largs, **kwargs):
        if name == "_":
            self._last_uid += 1
            self._observers[self._last_uid] = (func, largs, kwargs)
            return self._last_uid
        return super().fbind(name, func, *largs, **kwargs)

    def funbind(self, name, func, *largs, **kwargs):
        if name == "_":
            key = (func, largs, kwargs)
            for uid, observer in list(self._observers.items()):
                if observer == key:
                    del self._observers[uid]
                    break
            return None
        return super().funbind(name, func, *largs, **kwargs)

    def unbind_uid(self, name, uid):
        # The kv compiler unbinds with the uid fbind returned (when an
        # intermediate like ``root.tr`` changes, or Builder.unbind_property).
        if name == "_":
            self._observers.pop(uid, None)
            return None
        return super().unbind_uid(name, uid)


def N_(text: str) -> str:
    """Mark ``text`` for extraction without translating it now (translate later with ``tr._``)."""
    return text
