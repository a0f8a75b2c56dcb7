"""kiosk.ui.lazy.LazyWidgets: made on first use or one at a time, hooks run once per widget."""

from __future__ import annotations

import pytest

from kiosk.ui.lazy import LazyWidgets


def counting_factories(*names):
    made = []

    def factory(name):
        def make():
            made.append(name)
            return f"widget-{name}"
        return make

    return {name: factory(name) for name in names}, made


def test_nothing_is_made_until_asked_for_then_it_is_kept():
    factories, made = counting_factories("a", "b")
    widgets = LazyWidgets(factories)
    assert made == [] and widgets.built() == {}
    assert list(widgets) == ["a", "b"] and len(widgets) == 2
    assert widgets["b"] == "widget-b"
    assert widgets["b"] == "widget-b"
    assert made == ["b"]


def test_build_next_makes_the_rest_in_order_one_per_call():
    factories, made = counting_factories("a", "b", "c")
    widgets = LazyWidgets(factories)
    widgets["b"]
    assert widgets.build_next() is True   # makes a; c remains
    assert widgets.build_next() is False  # makes c; none remain
    assert widgets.build_next() is False
    assert made == ["b", "a", "c"]


def test_hooks_see_every_widget_once_including_those_made_before_the_hook():
    factories, _ = counting_factories("a", "b")
    widgets = LazyWidgets(factories)
    widgets["a"]
    seen = []
    widgets.on_built(lambda name, widget: seen.append((name, widget)))
    widgets["a"]
    widgets["b"]
    widgets["b"]
    assert seen == [("a", "widget-a"), ("b", "widget-b")]


def test_an_unknown_name_is_a_key_error_and_in_is_not_building():
    factories, made = counting_factories("a")
    widgets = LazyWidgets(factories)
    with pytest.raises(KeyError):
        widgets["zz"]
    assert "a" in widgets and "zz" not in widgets
    assert made == []
