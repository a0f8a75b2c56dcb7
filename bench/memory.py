"""Memory after many visitors: RSS growth of the real app over N simulated visitor flows.

Run::

    .venv/bin/python bench/memory.py                      # 20 000 flows after 500 warm-up flows
    .venv/bin/python bench/memory.py --flows 2000 --every 200 --tracemalloc
    .venv/bin/python bench/memory.py --shm                # buffer in /dev/shm instead of on disk

The real :class:`kiosk.app.BalieApp` runs in this process on a real (virtual)
window: a private Xvfb is started when DISPLAY is unset. It is driven the way
the UI tests drive it (``tests/kivy_driver.py``): real touch events through
Kivy's event loop, frames drawn, a controlled clock for the idle and thank-you
timers. Every answer is a real, durable commit to a buffer file, by default
in a temp dir inside the project (the disk; ``/tmp`` may be a tmpfs), with
``--shm`` in ``/dev/shm`` (faster, but the buffer's pages then count as shared
memory, not as this process's RSS, either way).

A flow is one visitor; the mix (seeded, ``--seed``) is:

* 40 % full: the grade on the welcome screen, every follow-up answered (a
  fifth of them skipped), the comment skipped, thanks tapped or timed out;
* 15 % with a comment typed on the on-screen keyboard (capital, letters,
  spaces, the odd delete), then Send;
* 20 % one tap, then the visitor walks away: the idle warning comes, counts
  down and the screen resets (clock advanced, not slept);
* 10 % switch language on the welcome screen first, then a partial flow
  that ends idle (the reset switches the language back);
* 15 % a few answers, the idle warning, "I'm still here", then the rest.

After ``--warmup`` flows (not counted) RSS is sampled after a full garbage
collection every ``--every`` flows. Printed: the samples, the growth from the
end of the warm-up to the end, and the least-squares slope (KiB per 1000
flows). Target: growth <= 5 MB (5 MiB).
``--census`` adds live widgets, Kivy ``Cache`` entries, SQLite's heap (its page
caches) and the Python object types that grew most since the warm-up. Exit status 1 when over target (0 with
``--no-check``).
``--tracemalloc`` also diffs Python allocations between the end of the warm-up
and the end (slows the run about 2x) and prints the top sources.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TARGET_MIB = 5.0
MIB = 1024 * 1024

#: (kind, weight) of the flow mix; see the module docstring.
MIX = (("full", 40), ("comment", 15), ("idle", 20), ("language", 10), ("still_here", 15))


def _prepare_kivy(home: Path) -> None:
    """Kivy reads these at import: private KIVY_HOME, no argv parsing, quiet log."""
    os.environ["KIVY_HOME"] = str(home)
    os.environ["KIVY_NO_ARGS"] = "1"
    os.environ["KIVY_NO_FILELOG"] = "1"
    os.environ["KIVY_CLIPBOARD"] = "sdl2"
    os.environ.setdefault("KIVY_LOG_LEVEL", "warning")


class Visitors:
    """Plays visitor flows on a :class:`tests.kivy_driver.Driver`."""

    def __init__(self, driver, rng: random.Random):
        self.d = driver
        self.rng = rng
        self.timeouts = driver.app.settings.timeouts
        self.questions = driver.app.questionnaire.questions
        self.default_language = driver.app.settings.languages.default
        self.other_languages = [c for c in driver.app.settings.languages.available
                                if c != self.default_language]
        comment = driver.navigator.screens["comment"]
        self.comment_screen = comment
        self.keys, self.space, self.delete, self.capital = self._keyboard(comment.ids.keyboard)
        self.kinds = [k for k, _ in MIX]
        self.weights = [w for _, w in MIX]
        self.counts = {k: 0 for k in self.kinds}

    @staticmethod
    def _keyboard(keyboard):
        from kiosk.ui.keyboard import KeyButton
        from kiosk.ui.widgets import QuietButton

        keys, space, delete, capital = {}, None, None, None
        for row in range(4):
            for child in keyboard.ids[f"row{row}"].children:
                if isinstance(child, KeyButton) and len(child.text) == 1:
                    keys[child.text.lower()] = child
                elif isinstance(child, QuietButton):
                    if row == 0:
                        delete = child
                    else:
                        capital = child
        for child in keyboard.walk(restrict=True):
            if isinstance(child, KeyButton) and len(child.text) > 1:
                space = child
        assert keys and space and delete and capital, "on-screen keyboard not found"
        return keys, space, delete, capital

    # -- the pieces of a flow -------------------------------------------------
    def _expect(self, *screens: str) -> None:
        if self.d.screen not in screens:
            raise RuntimeError(f"expected screen {screens}, on {self.d.screen!r}")

    def _answer_current(self, skip_ratio: float = 0.2) -> None:
        """Answer (or skip) the follow-up question on show."""
        self._expect("question")
        question = self.d.current_screen().question
        if self.rng.random() < skip_ratio:
            self.d.tap(self.d.current_screen().ids.skip)
            return
        value = self.rng.choice(list(question.allowed_values()))
        self.d.tap(self.d.button_for(question.id, value))

    def _grade(self) -> None:
        self._expect("welcome")
        first = self.questions[0]
        value = self.rng.choice(list(first.allowed_values()))
        self.d.tap(self.d.button_for(first.id, value))

    def _type_comment(self) -> None:
        self._expect("comment")
        words = self.rng.randint(1, 6)
        for w in range(words):
            if w == 0 or self.rng.random() < 0.1:
                self.d.tap(self.capital)
            for _ in range(self.rng.randint(2, 7)):
                self.d.tap(self.keys[self.rng.choice(list(self.keys))])
            if self.rng.random() < 0.15:
                self.d.tap(self.delete)
            self.d.tap(self.space)
        self.d.tap(self.comment_screen.ids.send)

    def _rest_of_visit(self, comment: bool) -> None:
        """Answer what is left until the thank-you screen, then back to welcome."""
        while self.d.screen == "question":
            self._answer_current()
        if self.d.screen == "comment":
            if comment:
                self._type_comment()
            else:
                self.d.tap(self.comment_screen.ids.skip)
        self._expect("thanks")
        if self.rng.random() < 0.5:
            self.d.tap_at(640, 400)  # a tap anywhere on the thank-you screen
        else:
            self.d.advance(self.timeouts.thanks_s + 0.5, step=1.0)

    def _walk_away(self) -> None:
        """No touch: the idle warning, its countdown, the reset."""
        self.d.advance(self.timeouts.idle_warning_s + self.timeouts.idle_reset_s + 1.5, step=1.0)

    # -- flows ------------------------------------------------------------------
    def flow(self) -> str:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        getattr(self, f"_flow_{kind}")()
        self.d.frames(1)
        self._expect("welcome")
        self.counts[kind] += 1
        return kind

    def _flow_full(self) -> None:
        self._grade()
        self._rest_of_visit(comment=False)

    def _flow_comment(self) -> None:
        self._grade()
        self._rest_of_visit(comment=True)

    def _flow_idle(self) -> None:
        self._grade()
        self._walk_away()

    def _flow_language(self) -> None:
        welcome = self.d.navigator.screens["welcome"]
        code = self.rng.choice(self.other_languages) if self.other_languages else self.default_language
        self.d.tap(welcome._language_buttons[code])
        self._grade()
        for _ in range(self.rng.randint(0, 3)):
            if self.d.screen == "question":
                self._answer_current()
        self._walk_away()

    def _flow_still_here(self) -> None:
        self._grade()
        for _ in range(self.rng.randint(0, 3)):
            if self.d.screen == "question":
                self._answer_current()
        self.d.advance(self.timeouts.idle_warning_s + 2.5, step=1.0)
        warning = self.d.navigator.idle_warning
        if warning.parent is None:
            raise RuntimeError("the idle warning did not appear")
        self.d.tap(warning.ids.still_here)
        self._rest_of_visit(comment=self.rng.random() < 0.2)


def _rss() -> int:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss


#: Live objects per type at the first census (the end of the warm-up): later ones print the growth.
_census_base: dict[str, int] | None = None


def _sqlite_heap() -> int | None:
    """Bytes SQLite has allocated in this process (page caches, statements), or None if unknown."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)  # the library _sqlite3 is linked to, already loaded: same counters
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        return int(lib.sqlite3_memory_used())
    except (OSError, AttributeError):
        return None


def _census() -> str:
    """Counts that explain growth when there is any: Kivy caches, widgets, SQLite, growing types."""
    global _census_base
    from collections import Counter

    from kivy.cache import Cache
    from kivy.uix.widget import Widget

    caches = {name: len(objects) for name, objects in Cache._objects.items() if objects}
    widgets = 0
    types: Counter = Counter()
    for o in gc.get_objects():
        kind = type(o)
        types[f"{kind.__module__}.{kind.__qualname__}"] += 1
        try:
            widgets += isinstance(o, Widget)
        except ReferenceError:  # a dead weak proxy
            pass
    cache_text = ", ".join(f"{k}={v}" for k, v in sorted(caches.items())) or "empty"
    heap = _sqlite_heap()
    text = f"widgets={widgets}; Kivy caches: {cache_text}"
    text += f"; SQLite heap {heap / MIB:.2f} MiB" if heap is not None else ""
    if _census_base is None:
        _census_base = dict(types)
    else:
        grown = sorted(((n - _census_base.get(k, 0), k) for k, n in types.items()
                        if n - _census_base.get(k, 0) > 0), reverse=True)[:6]
        text += "; most grown types: " + (", ".join(f"{k} +{d}" for d, k in grown) or "none")
    return text


def _slope(points: list[tuple[int, int]]) -> float:
    """Least-squares slope of RSS (bytes) over flows: bytes per flow."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx if sxx else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flows", type=int, default=20000, help="measured flows (default 20000)")
    ap.add_argument("--warmup", type=int, default=500, help="flows before the first sample (default 500)")
    ap.add_argument("--every", type=int, default=1000, help="sample RSS every N flows (default 1000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None,
                    help="folder for the buffer (default: a temp dir inside the project, on disk)")
    ap.add_argument("--shm", action="store_true", help="put the buffer in /dev/shm instead")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="diff Python allocations between warm-up end and end (slower)")
    ap.add_argument("--no-check", action="store_true",
                    help="exit 0 whatever the growth (the suite's smoke test: structure, not size)")
    ap.add_argument("--census", action="store_true",
                    help="print widget and Kivy cache counts, SQLite's heap and the object "
                         "types grown most since the warm-up with every sample")
    args = ap.parse_args(argv)
    if args.flows < 1 or args.every < 1 or args.warmup < 0:
        ap.error("--flows and --every must be >= 1, --warmup >= 0")

    base = Path("/dev/shm") if args.shm else (args.dir or ROOT)
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-memory-", dir=base))
    try:
        return _run(args, base, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args, base: Path, work: Path) -> int:
    _prepare_kivy(work / "kivy-home")
    from _display import ensure_display

    display = ensure_display()

    from tests.kivy_driver import start_app, test_settings

    settings = test_settings(idle_warning_s=30, idle_reset_s=15, thanks_s=5, rapid_repeat_s=20)
    driver = start_app(work, settings=settings)
    visitors = Visitors(driver, random.Random(args.seed))
    print(f"memory: {args.flows} flows after {args.warmup} warm-up flows, sample every "
          f"{args.every}; buffer in {base} ({'tmpfs /dev/shm' if args.shm else 'disk'}); "
          f"display {display}; pid {os.getpid()}", flush=True)

    t0 = time.monotonic()
    for _ in range(args.warmup):
        visitors.flow()
    warm_s = time.monotonic() - t0
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(25)
    start_rss = _rss()
    snapshot0 = tracemalloc.take_snapshot() if args.tracemalloc else None
    samples = [(0, start_rss)]
    print(f"{'flows':>8}{'RSS MiB':>10}{'growth MiB':>12}{'flows/s':>9}", flush=True)
    print(f"{0:>8}{start_rss / MIB:>10.2f}{0:>12.2f}{args.warmup / warm_s if warm_s else 0:>9.1f}"
          + (f"   {_census()}" if args.census else ""), flush=True)
    t_mark, done = time.monotonic(), 0
    while done < args.flows:
        batch = min(args.every, args.flows - done)
        for _ in range(batch):
            visitors.flow()
        done += batch
        rss = _rss()
        samples.append((done, rss))
        now = time.monotonic()
        print(f"{done:>8}{rss / MIB:>10.2f}{(rss - start_rss) / MIB:>12.2f}"
              f"{batch / (now - t_mark):>9.1f}" + (f"   {_census()}" if args.census else ""),
              flush=True)
        t_mark = now
    total_s = time.monotonic() - t0

    growth = samples[-1][1] - start_rss
    peak = max(r for _, r in samples) - start_rss
    slope = _slope(samples) * 1000 / 1024  # KiB per 1000 flows
    print()
    print("flow mix: " + ", ".join(f"{k} {v}" for k, v in visitors.counts.items()))
    print(f"answers in buffer: {_count_answers(driver.buffer_path)}")
    print(f"time: {total_s:.0f} s ({(args.warmup + args.flows) / total_s:.1f} flows/s)")
    print(f"RSS after warm-up   {start_rss / MIB:10.2f} MiB")
    print(f"RSS at end          {samples[-1][1] / MIB:10.2f} MiB")
    print(f"growth              {growth / MIB:10.2f} MiB (peak {peak / MIB:.2f} MiB)")
    print(f"slope               {slope:10.1f} KiB per 1000 flows")
    ok = growth <= TARGET_MIB * MIB
    print(f"target growth <= {TARGET_MIB:.0f} MiB after warm-up: {'PASS' if ok else 'FAIL'}")
    if snapshot0 is not None:
        import tracemalloc

        snapshot1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        print("\ntracemalloc: top 15 sources of growth (Python allocations only)")
        for stat in snapshot1.compare_to(snapshot0, "traceback")[:15]:
            print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks")
            for line in stat.traceback.format(limit=6)[-12:]:
                print("     " + line)
    # Not driver.close(): it runs frames on the real clock, which is now far behind the
    # controlled one (hours of simulated idle time), so Kivy's frame limiter would wait.
    driver.navigator._cancel_timers()
    driver.app.buffer.close()
    return 0 if ok or args.no_check else 1


def _count_answers(path: Path) -> int:
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM answers").fetchone()[0]
    except sqlite3.Error:
        return -1
    finally:
        con.close()


if __name__ == "__main__":
    sys.exit(main())
