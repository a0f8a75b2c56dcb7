"""Draw the placeholder municipal logo (assets/logo.png): a blue shield with white waves.

Run with the dev extra installed: ``.venv/bin/python scripts/make_logo.py``.
A municipality replaces the file (or points ``theme.logo`` in kiosk.toml elsewhere).
"""

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
SCALE = 4  # draw large, then downsample for smooth edges
BLUE = (0, 68, 124, 255)
ORANGE = (225, 112, 0, 255)
WHITE = (255, 255, 255, 255)


def main() -> None:
    s = SIZE * SCALE
    image = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    top, side = int(0.06 * s), int(0.12 * s)
    # Shield: a rectangle top with a pointed bottom.
    shield = [(side, top), (s - side, top), (s - side, int(0.55 * s)),
              (s // 2, int(0.95 * s)), (side, int(0.55 * s))]
    draw.polygon(shield, fill=BLUE)
    # A crown-like band of three orange blocks across the top.
    for i in range(3):
        x0 = side + int(0.08 * s) + i * int(0.24 * s)
        draw.rectangle([x0, top + int(0.07 * s), x0 + int(0.12 * s), top + int(0.19 * s)], fill=ORANGE)
    # Three white waves.
    for row in range(3):
        y = int(0.40 * s) + row * int(0.12 * s)
        for i in range(4):
            x0 = side + int(0.04 * s) + i * int(0.165 * s)
            draw.arc([x0, y, x0 + int(0.165 * s), y + int(0.10 * s)], 180, 360,
                     fill=WHITE, width=int(0.025 * s))
    image = image.resize((SIZE, SIZE), Image.LANCZOS)
    out = Path(__file__).resolve().parent.parent / "assets" / "logo.png"
    image.save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
