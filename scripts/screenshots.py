"""Take a screenshot of every screen of the terminal into docs/screens/.

Run: ``.venv/bin/python scripts/screenshots.py`` (starts its own Xvfb when no
DISPLAY is set). Drives the real app with touches, as the UI tests do.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.conftest as harness  # noqa: E402  (sets Kivy's environment first)


def main() -> None:
    import os

    if not os.environ.get("DISPLAY"):
        harness._start_xvfb()
    from tests.kivy_driver import start_app

    out = ROOT / "docs" / "screens"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        d = start_app(Path(tmp))
        shots = []

        def shot(name):
            shots.append(d.screenshot(out / f"{name}.png"))

        shot("01-welcome")
        d.tap(d.button_for("totaal", 8))
        shot("02-question-smiley")
        for question_id, value in (("wachttijd", 4), ("vriendelijkheid", 5),
                                   ("deskundigheid", 4), ("duidelijkheid", 3)):
            d.tap(d.button_for(question_id, value))
        shot("03-question-yesno")
        d.tap(d.button_for("verwachting", "yes"))
        shot("04-question-choice")
        d.tap(d.button_for("dienst", "paspoort-id"))
        screen = d.current_screen()
        screen.ids.text.text = "Fijn geholpen, bedankt"
        shot("05-comment-keyboard")
        d.tap(screen.ids.send)
        shot("06-thanks")
        d.advance(6)
        english = [b for b in d.current_screen().ids.languages.children if b.text == "English"][0]
        d.tap(english)
        shot("07-welcome-english")
        d.tap(d.button_for("totaal", 6))
        d.advance(d.app.settings.timeouts.idle_warning_s + 1)
        shot("08-idle-warning")
        d.close()
    for path in shots:
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
