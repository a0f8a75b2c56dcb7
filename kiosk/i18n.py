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

import hashlib
import io
import json
from pathlib import Path

from kivy.event import EventDispatcher
from kivy.properties import StringProperty

from kiosk.atomic_file import write_atomic

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


def load_catalog(path: Path, cache_dir: Path | None = None) -> dict[str, str]:
    """Read one ``.po`` file into ``{msgid: msgstr}``, leaving out untranslated and fuzzy entries.

    With ``cache_dir``, the result is also kept there as JSON under the SHA-256
    of the ``.po`` bytes, and read from there the next time: the terminal's
    first frame waits for this, and Babel's reader costs ~20 ms of imports and
    parsing while hashing the file and loading the JSON cost well under 1 ms.
    An edited ``.po`` has another hash, so it is read again; a cache that cannot
    be read or written (a full or read-only disk) only costs that time.
    """
    data = Path(path).read_bytes()
    cached = None
    if cache_dir is not None:
        digest = hashlib.sha256(data).hexdigest()[:32]
        cached = Path(cache_dir) / f"{DOMAIN}-{Path(path).parent.parent.name}-{digest}.json"
        try:
            catalog = json.loads(cached.read_text(encoding="utf-8"))
            if isinstance(catalog, dict) and all(
                    isinstance(k, str) and isinstance(v, str) for k, v in catalog.items()):
                return catalog
        except (OSError, ValueError):
            pass
    from babel.messages.pofile import read_po

    catalog = {
        message.id: message.string
        for message in read_po(io.BytesIO(data))
        if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
    }
    if cached is not None:
        _keep(cached, catalog)
    return catalog


def _keep(path: Path, catalog: dict[str, str]) -> None:
    """Write the cache file whole or not at all; no fsync: this may run on the UI thread (a
    language switch), and a cache lost to a power cut is only read again from the .po."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(catalog, ensure_ascii=False).encode("utf-8"), durable=False)
    except OSError:
        pass


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

    def __init__(self, directory: Path, language: str = "nl", cache_dir: Path | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self._directory = Path(directory)
        self._cache_dir = cache_dir  # parsed catalogues kept between starts (load_catalog)
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
            self._catalogs[language] = (load_catalog(path, self._cache_dir)
                                        if path.is_file() else {})
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
