"""Widgets made when first needed, or ahead of time one per frame once the terminal is on screen.

Use::

    screens = LazyWidgets({"welcome": WelcomeScreen, "comment": CommentScreen})
    screens.on_built(lambda name, screen: manager.add_widget(screen))
    screens["welcome"]            # made now (and the hooks run), then kept
    while screens.build_next():   # one more per call; False when all are made
        ...

Why: building every screen and answer panel before the first frame made the
terminal's start-up wait for widgets nobody sees yet (the comment keyboard,
the follow-up panels with their drawn faces, and the label textures Kivy
renders for all of them in the first frame). The app builds the welcome
screen and its panel first, shows them, and lets the rest follow in the next
frames (:meth:`build_next`). A widget asked for before its turn is simply made
at that moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, Generic, Iterator, TypeVar

W = TypeVar("W")


class LazyWidgets(Mapping, Generic[W]):
    """A read-only mapping of names to widgets, each made by its factory on first access."""

    def __init__(self, factories: dict[str, Callable[[], W]]) -> None:
        self._factories = dict(factories)
        self._built: dict[str, W] = {}
        self._hooks: list[Callable[[str, W], None]] = []

    def on_built(self, hook: Callable[[str, W], None]) -> None:
        """Call ``hook(name, widget)`` for every widget made, including those made already."""
        self._hooks.append(hook)
        for name, widget in list(self._built.items()):
            hook(name, widget)

    def __getitem__(self, name: str) -> W:
        widget = self._built.get(name)
        if widget is None:
            widget = self._factories[name]()  # KeyError for an unknown name, as a dict would
            self._built[name] = widget
            for hook in self._hooks:
                hook(name, widget)
        return widget

    def __contains__(self, name: object) -> bool:
        return name in self._factories  # asking does not make it

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)

    def built(self) -> dict[str, W]:
        """The widgets made so far (nothing is made by asking)."""
        return dict(self._built)

    def build_next(self) -> bool:
        """Make the next widget not made yet, in the factories' order; ``False`` once all are made."""
        for name in self._factories:
            if name not in self._built:
                self[name]
                return len(self._built) < len(self._factories)
        return False
