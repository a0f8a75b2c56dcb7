"""The report's charts, drawn with matplotlib (Agg, no pyplot state) in the municipality's calm look.

Use::

    fig = new_figure((8, 4))
    thermometer(fig.add_subplot(), report)
    png_bytes(fig)                         # or fig.savefig(pdf_pages)

Colours are the Okabe-Ito palette (safe for colour-blind readers) and a status
is never told by colour alone: markers differ in shape and fill, and labels
say it in words. Suppressed groups (fewer than ``min_shown`` answers) are never
drawn: the chart says "minder dan 10 antwoorden" where they would be.
"""

from __future__ import annotations

import io
from datetime import date

import matplotlib

matplotlib.use("Agg")  # no display on a server; set before anything draws

import matplotlib.cm  # noqa: E402
import matplotlib.patches  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from PIL import Image  # noqa: E402

from central.report import (  # noqa: E402
    PART_NL,
    PARTS,
    Report,
    earlier_study,
    aspect_label,
    month_label,
    weekday_label,
)
from central.stats import Status, Summary  # noqa: E402

BLUE, ORANGE, SKY, GREEN, VERMILLION, PURPLE = ("#0072B2", "#E69F00", "#56B4E9", "#009E73",
                                                "#D55E00", "#CC79A7")
INK, GREY, LIGHT = "#1F2933", "#6B7785", "#E4E7EB"
#: grades 1-5, 6, 7, 8, 9-10: from vermillion through grey to blue (a diverging, CVD-safe scale)
BANDS = (("1–5", (1, 5), "#C85A1E"), ("6", (6, 6), "#F2B48A"), ("7", (7, 7), "#D9D9D9"),
         ("8", (8, 8), "#9CC3E4"), ("9–10", (9, 10), "#2C6FB0"))
GRID_CMAP = LinearSegmentedColormap.from_list("balie", ["#C85A1E", "#F2B48A", "#F4F4F4",
                                                        "#9CC3E4", "#2C6FB0"])
FONT = "DejaVu Sans"
matplotlib.rcParams.update({
    "font.family": FONT, "font.size": 9, "axes.edgecolor": GREY, "axes.labelcolor": INK,
    "xtick.color": INK, "ytick.color": INK, "axes.titlesize": 11, "axes.titleweight": "bold",
    "axes.titlelocation": "left", "axes.spines.top": False, "axes.spines.right": False,
    "svg.fonttype": "path", "pdf.fonttype": 42,
})


def nl(x: float, digits: int = 1) -> str:
    """A number the Dutch way: ``7,5``."""
    return f"{x:.{digits}f}".replace(".", ",")


def dutch(*axes, digits: int | None = None) -> None:
    """Tick labels with a decimal comma (``7,5``) on the given axes (``ax.xaxis``, ...)."""
    def fmt(value, _pos):
        if digits is None:
            text = f"{value:.2f}".rstrip("0").rstrip(".")
            return text.replace(".", ",")
        return nl(value, digits)
    for axis in axes:
        axis.set_major_formatter(FuncFormatter(fmt))


def new_figure(size: tuple[float, float]) -> Figure:
    return Figure(figsize=size, layout="constrained")


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as a PNG on white, drawn once.

    Like ``fig.savefig(buf, format="png", dpi=dpi, facecolor="white")`` pixel for pixel, but
    savefig first draws the whole figure with drawing switched off to run the layout engine,
    then draws it again; here the layout engine runs inside the one real draw.
    """
    canvas = FigureCanvasAgg(fig)
    dpi_before, face_before = fig.dpi, fig.get_facecolor()
    fig.dpi = dpi
    fig.set_facecolor("white")
    try:
        canvas.draw()
        # the background is opaque white, so RGB loses nothing; level 3 of 9 compresses RGB
        # smaller than level 6 compressed RGBA (matplotlib's default), in two thirds of the time
        rgb = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw",
                               "RGBA", 0, 1).convert("RGB")
        buf = io.BytesIO()
        rgb.save(buf, format="png", compress_level=3, dpi=(dpi, dpi))
        return buf.getvalue()
    finally:
        fig.dpi = dpi_before
        fig.set_facecolor(face_before)


def _shown(summary: Summary | None) -> bool:
    return summary is not None and summary.status != Status.SUPPRESSED and summary.mean is not None


def thermometer(ax, report: Report) -> None:
    """Mean and interval per aspect against the target line.

    Hollow circle: the comparison period; hollow square: the latest imported study of the
    counter (``central.report.earlier_study``).
    """
    rows = list(report.scorecard)[::-1]
    earlier = earlier_study(report)
    earlier_means = {a: agg.mean for a, agg in earlier[1].items()} if earlier else {}
    lows = [r.summary.ci.low for r in rows if _shown(r.summary) and r.summary.ci]
    lows += [r.previous.mean for r in rows if _shown(r.previous)]
    lows += list(earlier_means.values())
    left = min([report.target - 0.8] + [x - 0.2 for x in lows])
    highs = [r.summary.ci.high for r in rows if _shown(r.summary) and r.summary.ci]
    highs += list(earlier_means.values())
    right = max([report.target + 0.8] + [x + 0.2 for x in highs])
    left, right = max(1.0, round(left * 2) / 2 - 0.0), min(10.0, round(right * 2) / 2 + 0.5)
    ax.axvline(report.target, color=VERMILLION, lw=1.5, ls="--", zorder=1)
    ax.text(report.target, len(rows) - 0.35, f" doel {nl(report.target)}", color=VERMILLION,
            va="bottom", ha="left", fontsize=8)
    for y, row in enumerate(rows):
        s = row.summary
        ax.axhline(y, color=LIGHT, lw=0.6, zorder=0)
        if _shown(row.previous):
            ax.plot(row.previous.mean, y - 0.18, marker="o", ms=7, mfc="white", mec=GREY,
                    mew=1.4, ls="none", zorder=3)
        if row.aspect in earlier_means:
            ax.plot(earlier_means[row.aspect], y + 0.18, marker="s", ms=7, mfc="white",
                    mec=INK, mew=1.2, ls="none", zorder=3)
        if not _shown(s):
            ax.text(left + 0.05, y, "minder dan 10 antwoorden: niet getoond", va="center",
                    color=GREY, fontsize=8, style="italic")
            continue
        indicative = s.status == Status.NOT_TESTED
        colour = GREY if indicative else BLUE
        if s.ci is not None:
            ax.plot([s.ci.low, s.ci.high], [y, y], color=colour, lw=2.2, solid_capstyle="butt",
                    zorder=2)
        ax.plot(s.mean, y, marker="D" if indicative else "o", ms=8, color=colour, zorder=4)
        ax.text(min(right - 0.05, (s.ci.high if s.ci else s.mean) + 0.06), y + 0.12,
                nl(s.mean) + (" (indicatief)" if indicative else ""), fontsize=8, color=INK,
                va="bottom")
    ax.set_yticks(range(len(rows)), [aspect_label(r.aspect) for r in rows])
    ax.set_ylim(-0.7, len(rows) - 0.2)
    ax.set_xlim(left, right)
    ax.set_xlabel("gemiddeld rapportcijfer (1–10), lijn: 95 %-interval")
    dutch(ax.xaxis)
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", length=0)
    handles = [Line2D([], [], marker="o", color=BLUE, lw=2.2, label="deze periode"),
               Line2D([], [], ls="--", color=VERMILLION, label=f"doel {nl(report.target)}")]
    if report.compare_period is not None:
        handles.append(Line2D([], [], marker="o", mfc="white", mec=GREY, ls="none", mew=1.4,
                              label="vergelijkingsperiode"))
    if earlier is not None:
        handles.append(Line2D([], [], marker="s", mfc="white", mec=INK, ls="none", mew=1.2,
                              label=f"eerdere studie: {earlier[0]}"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(handles),
              frameon=False, fontsize=8)


def distribution(ax, report: Report) -> None:
    """Share of grades 1-5, 6, 7, 8, 9-10 per aspect, as one stacked bar each."""
    rows = list(report.scorecard)[::-1]
    bars: list[tuple[int, float, float, str]] = []   # y, share, left, colour: one barh call
    for y, row in enumerate(rows):
        if not row.distribution:
            ax.text(1, y, "minder dan 10 antwoorden: niet getoond", va="center", color=GREY,
                    fontsize=8, style="italic")
            continue
        total = sum(row.distribution.values())
        left = 0.0
        for label, (lo, hi), colour in BANDS:
            share = sum(n for g, n in row.distribution.items() if lo <= g <= hi) / total * 100
            bars.append((y, share, left, colour))
            if share >= 6:   # the label sits inside its bar: not measured by the layout
                dark = colour in ("#C85A1E", "#2C6FB0")
                ax.text(left + share / 2, y, f"{share:.0f}%", ha="center", va="center",
                        fontsize=7.5, color="white" if dark else INK, in_layout=False)
            left += share
    if bars:
        ys, shares, lefts, colours = zip(*bars)
        ax.barh(ys, shares, left=lefts, color=colours, height=0.62, edgecolor="white", lw=0.8)
    ax.set_yticks(range(len(rows)), [aspect_label(r.aspect) for r in rows])
    ax.set_xlim(0, 100)
    ax.set_xlabel("aandeel van de antwoorden (%)")
    ax.tick_params(axis="y", length=0)
    ax.spines["left"].set_visible(False)
    handles = [Line2D([], [], marker="s", ms=9, ls="none", color=c, label=f"cijfer {label}")
               for label, _, c in BANDS]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=5,
              frameon=False, fontsize=8)


def trends(fig: Figure, report: Report, gridspec_kw: dict | None = None) -> None:
    """Small multiples: monthly mean with its interval band per aspect, a new line per series.

    ``gridspec_kw``: fixed margins (on an A4 page); without it the figure's layout engine places
    the panels and the legend below them.
    """
    aspects = list(report.aspects)
    cols = 2
    rows = (len(aspects) + cols - 1) // cols
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False,
                        gridspec_kw=gridspec_kw)
    means = [p.summary for t in report.trends for p in t.points if _shown(p.summary)]
    lo = min([report.target - 1] + [s.ci.low for s in means if s.ci]) - 0.1
    hi = max([report.target + 0.7] + [s.ci.high for s in means if s.ci]) + 0.1
    months = sorted({p.month for t in report.trends for p in t.points})
    for ax, aspect in zip(axes.flat, aspects):
        ax.axhline(report.target, color=VERMILLION, lw=1, ls="--")
        series = [t for t in report.trends if t.aspect == aspect]
        for t in series:
            shown = [p for p in t.points if _shown(p.summary)]
            _draw_runs(ax, shown)
            if t.series > 1 and t.points:
                x = _x(t.points[0].month) - 0.5
                ax.axvline(x, color=GREY, lw=1, ls=":")
                ax.text(x + 0.1, hi - 0.05, "nieuwe vraagtekst", fontsize=7, color=GREY,
                        va="top")
        ax.set_title(aspect_label(aspect), fontsize=9.5)
        ax.set_ylim(lo, hi)
        ax.grid(axis="y", color=LIGHT, lw=0.6)
        dutch(ax.yaxis)
    for ax in list(axes.flat)[len(aspects):]:
        ax.set_visible(False)
    if months:
        ticks = [_x(m) for m in months]
        step = max(1, len(ticks) // 6)
        for ax in axes.flat:
            ax.set_xticks(ticks[::step], [month_label(m) for m in months[::step]], fontsize=7.5)
            ax.set_xlim(ticks[0] - 0.6, ticks[-1] + 0.6)
    fig.supylabel("gemiddeld rapportcijfer per maand", fontsize=9)
    fig.legend(handles=[Line2D([], [], marker="o", color=BLUE, label="gemiddelde (band: 95 %-interval)"),
                        Line2D([], [], marker="D", mfc="white", mec=GREY, ls="none",
                               label="indicatief (10–29 antwoorden)"),
                        Line2D([], [], ls="--", color=VERMILLION, label=f"doel {nl(report.target)}"),
                        Line2D([], [], ls=":", color=GREY, label="nieuwe reeks: vraagtekst gewijzigd")],
               ncol=2, frameon=False, fontsize=8,
               **({"loc": "outside lower center"} if gridspec_kw is None
                  else {"loc": "lower center", "bbox_to_anchor": (0.5, 0.035)}))


def _x(month: date) -> int:
    return month.year * 12 + month.month


def _draw_runs(ax, points) -> None:
    """A line through consecutive months only; a gap (a hidden month) breaks it."""
    run: list = []
    for p in points + [None]:
        if p is not None and (not run or _x(p.month) == _x(run[-1].month) + 1):
            run.append(p)
            continue
        if run:
            xs = [_x(q.month) for q in run]
            ys = [q.summary.mean for q in run]
            band = [q for q in run if q.summary.ci]
            ax.fill_between([_x(q.month) for q in band], [q.summary.ci.low for q in band],
                            [q.summary.ci.high for q in band], color=SKY, alpha=0.35, lw=0)
            ax.plot(xs, ys, color=BLUE, lw=1.6)
            # the months' intervals as one line broken by NaN (also visible for a month on its
            # own), the markers as one line per kind: the same pixels as one artist per month
            whiskers_x, whiskers_y = [], []
            for q in band:
                whiskers_x += [_x(q.month), _x(q.month), float("nan")]
                whiskers_y += [q.summary.ci.low, q.summary.ci.high, float("nan")]
            if band:
                ax.plot(whiskers_x, whiskers_y, color=SKY, lw=2.5, solid_capstyle="butt",
                        zorder=1)
            for indicative in (False, True):
                marked = [q for q in run
                          if (q.summary.status == Status.NOT_TESTED) == indicative]
                if marked:
                    ax.plot([_x(q.month) for q in marked], [q.summary.mean for q in marked],
                            ls="none", marker="D" if indicative else "o", ms=4.5, color=BLUE,
                            mfc="white" if indicative else BLUE, mec=BLUE)
        run = [p] if p is not None else []


def grid(ax, report: Report, cells, rows, cols, row_labels, col_labels, title: str) -> None:
    """A table of means coloured around the target; hidden cells grey, indicative ones marked *."""
    norm = Normalize(report.target - 1.0, report.target + 1.0)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            s = cells.get((r, c))
            if s is None:
                face, text, colour = "white", "–", GREY
            elif not _shown(s):
                face, text, colour = "#EEEEEE", "< 10", GREY
            else:
                face = GRID_CMAP(norm(s.mean))
                lum = 0.299 * face[0] + 0.587 * face[1] + 0.114 * face[2]
                colour = "white" if lum < 0.5 else INK
                text = nl(s.mean) + ("*" if s.status == Status.NOT_TESTED else "")
            indicative = s is not None and s.status == Status.NOT_TESTED
            # indicative cells are hatched too: not told by the colour (or the * alone)
            ax.add_patch(matplotlib.patches.Rectangle((j, i), 1, 1, facecolor=face,
                                                      edgecolor="white", lw=1.5,
                                                      hatch="////" if indicative else None))
            if indicative:   # the figure on a white label over the hatching, always readable
                colour = INK
            # inside its cell, so the layout engine need not measure it (in_layout=False)
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=8, color=colour,
                    bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="none", alpha=0.9)
                    if indicative else None, in_layout=False)
    ax.set_xlim(0, len(cols))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks([j + 0.5 for j in range(len(cols))], col_labels, fontsize=8,
                  rotation=30 if max(len(c) for c in col_labels) > 11 else 0,
                  ha="left" if max(len(c) for c in col_labels) > 11 else "center")
    ax.set_yticks([i + 0.5 for i in range(len(rows))], row_labels, fontsize=8)
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, pad=14 if max(len(c) for c in col_labels) <= 11 else 52)


def service_grid(ax, report: Report) -> None:
    services = [value for value, _ in report.services]
    labels = [_wrap(label, 30) for _, label in report.services]
    grid(ax, report, report.service_grid, services, list(report.aspects), labels,
         [aspect_label(a) for a in report.aspects], "Dienst × aspect")


def heatmap(ax, report: Report) -> None:
    days = sorted({d for d, _ in report.heatmap}) or [1, 2, 3, 4, 5]
    grid(ax, report, report.heatmap, days, list(PARTS), [weekday_label(d) for d in days],
         [PART_NL[p] for p in PARTS],
         f"Weekdag × dagdeel: {aspect_label(report.heatmap_aspect).lower()}")


def grid_legend(fig: Figure, report: Report) -> None:
    cax = fig.add_axes((0.3, 0.075, 0.4, 0.012))
    sm = matplotlib.cm.ScalarMappable(Normalize(report.target - 1.0, report.target + 1.0),
                                      GRID_CMAP)
    bar = fig.colorbar(sm, cax=cax, orientation="horizontal", extend="both")
    bar.set_label(f"gemiddeld cijfer (midden: doel {nl(report.target)}); * en gearceerd: "
                  "indicatief (10–29 antwoorden); < 10: niet getoond; –: geen antwoorden",
                  fontsize=7.5)
    bar.ax.tick_params(labelsize=7)
    dutch(bar.ax.xaxis)


def priority_matrix(ax, report: Report) -> None:
    """Key drivers: correlation with the overall grade (x) against the aspect's mean (y)."""
    points = []
    for row in report.scorecard:
        driver = report.drivers.get(row.aspect)
        if driver is None or driver.r is None or not _shown(row.summary):
            continue
        points.append((row.aspect, driver, row.summary))
    if not points:
        ax.text(0.5, 0.5, "te weinig complete antwoorden voor de kerndrijvers", ha="center",
                transform=ax.transAxes, color=GREY)
        ax.set_axis_off()
        return
    rs = sorted(d.r for _, d, _ in points)
    mid_r = rs[len(rs) // 2] if len(rs) % 2 else (rs[len(rs) // 2 - 1] + rs[len(rs) // 2]) / 2
    xmin = min(d.ci.low for _, d, _ in points) - 0.05
    xmax = max(d.ci.high for _, d, _ in points) + 0.05
    ymin = min([report.target - 0.5] + [s.mean - 0.25 for _, _, s in points])
    ymax = max([report.target + 0.5] + [s.mean + 0.25 for _, _, s in points])
    ax.axhline(report.target, color=VERMILLION, ls="--", lw=1)
    ax.axvline(mid_r, color=GREY, ls=":", lw=1)
    placed: list[tuple[float, float]] = []
    for aspect, d, s in points:
        below = s.ci is not None and s.ci.high < report.target
        # a label near an earlier one goes below its point, so names never print over each other
        near = any(abs(d.r - x) < 0.08 * (xmax - xmin) and abs(s.mean - y) < 0.06 * (ymax - ymin)
                   for x, y in placed)
        placed.append((d.r, s.mean))
        ax.errorbar(d.r, s.mean, xerr=[[d.r - d.ci.low], [d.ci.high - d.r]],
                    yerr=[[s.mean - s.ci.low], [s.ci.high - s.mean]] if s.ci else None,
                    fmt="s" if below else "o", ms=7, color=ORANGE if below else BLUE,
                    ecolor=GREY, elinewidth=0.8, capsize=0)
        ax.annotate(aspect_label(aspect), (d.r, s.mean), xytext=(6, -13 if near else 5),
                    textcoords="offset points", fontsize=8)
    quad = dict(fontsize=7.5, color=GREY, style="italic")
    ax.text(0.98, 0.03, "verbeteren: sterk verband, lage score", ha="right", va="bottom",
            transform=ax.transAxes, **{**quad, "color": VERMILLION, "weight": "bold"})
    ax.text(0.98, 0.97, "vasthouden: sterk verband, hoge score", ha="right", va="top",
            transform=ax.transAxes, **quad)
    ax.text(0.02, 0.97, "onderhouden", ha="left", va="top", transform=ax.transAxes, **quad)
    ax.text(0.02, 0.03, "lage score, zwakker verband", ha="left", va="bottom", transform=ax.transAxes, **quad)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_xlabel("samenhang met het totaaloordeel (correlatie r, lijn: 95 %-interval)")
    ax.set_ylabel("gemiddeld cijfer")
    dutch(ax.xaxis, ax.yaxis)


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines)
