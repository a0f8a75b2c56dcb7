"""The report's faster PNG path draws the same charts as matplotlib's own ``savefig``."""

from __future__ import annotations

import gc
import io
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from central.db import make_engine
from central.report import Period, build_report
from central.report_charts import png_bytes
from central.report_render import _figures, render_html

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import generate_study_data  # noqa: E402


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Two weeks of the busy counter: small groups give hidden and hatched (indicative) cells."""
    url = f"sqlite:///{tmp_path_factory.mktemp('render') / 'study.sqlite3'}"
    generate_study_data.generate(url, start=date(2025, 3, 3), days=14,
                                 version_change=date(2025, 3, 13), seed=7)
    engine = make_engine(url)
    try:
        yield build_report(engine, Period.from_dates(date(2025, 3, 10), date(2025, 3, 16)),
                           compare_with=Period.from_dates(date(2025, 3, 3), date(2025, 3, 9)))
    finally:
        engine.dispose()


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_every_chart_has_the_pixels_savefig_would_draw(report):
    ours, theirs = _figures(report), _figures(report)   # each figure laid out once
    for name in ours:
        expected = io.BytesIO()
        theirs[name].savefig(expected, format="png", dpi=110, facecolor="white")
        got = pixels(png_bytes(ours[name], dpi=110))
        want = pixels(expected.getvalue())
        assert got.shape == want.shape, name
        assert (got == want).all(), f"{name}: {(got != want).any(axis=2).sum()} pixels differ"


def test_rendering_leaves_the_garbage_collector_as_it_was(report):
    assert gc.isenabled()
    render_html(report)
    assert gc.isenabled()
    gc.disable()
    try:
        render_html(report)
        assert not gc.isenabled()
    finally:
        gc.enable()
