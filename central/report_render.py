"""The report laid out: a self-contained HTML page and a printable A4 PDF (matplotlib's PdfPages).

Use::

    html = render_html(report)                        # one string: inline CSS, charts as data: PNGs
    Path("rapport.html").write_text(html, encoding="utf-8")
    render_pdf(report, Path("rapport.pdf"))           # A4 portrait pages
    for name, fig in pages(report): fig.savefig(f"{name}.png", dpi=80)   # the same pages as images

Both show the same tables (:func:`scorecard_table` and friends give the
cells as Dutch text), so a figure hidden in one is hidden in the other: a
suppressed group's cells only ever say "< 10". The HTML makes no request
anywhere (no fonts, scripts or images from outside); the PDF needs no system
package (matplotlib draws it with its own DejaVu fonts, embedded).
"""

from __future__ import annotations

import base64
import gc
import html
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from central import report_charts as charts
from central.report import PART_NL, PARTS, Report, aspect_label, weekday_label
from central.stats import Change, Status, Summary

A4_INCHES = (8.27, 11.69)   # 210 x 297 mm
STATUS_NL = {Status.MET: "gehaald", Status.WITHIN_MARGIN: "binnen de marge",
             Status.BELOW: "onder het doel", Status.NOT_TESTED: "indicatief, niet getoetst",
             Status.SUPPRESSED: "niet getoond (< 10)"}
CHANGE_NL = {Change.UP: "gestegen ▲", Change.DOWN: "gedaald ▼",
             Change.NO_SIGNIFICANT_CHANGE: "geen significante verandering",
             Change.NOT_TESTED: "niet getoetst"}
HIDDEN = "< 10"
WEIGHTED_NOTE = (" Gewogen naar het aantal bezoekers per weekdag × dagdeel; n is het aantal "
                 "antwoorden, het interval rekent met de effectieve omvang (zie Verantwoording).")
PDF_SCORECARD_HEAD = ("Aspect", "n", "Gem.", "95%-interval", "Doel", "% 1–5 (int.)", "% 8–10",
                      "Vorige", "Verschil", "Verandering (p)")
nl = charts.nl


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.0f}%"


def _p(p: float) -> str:
    return "< 0,001" if p < 0.001 else nl(p, 3)


# ---------------------------------------------------------------------------- tables as text

SCORECARD_HEAD = ("Aspect", "n", "Gemiddelde", "95%-interval", "Doel", "% 1–5 (95%-int.)",
                  "% 8–10", "Vorige", "Verschil", "Verandering (p)")


def scorecard_table(report: Report) -> list[tuple[str, ...]]:
    """One row of text per aspect; a suppressed aspect shows only its count."""
    out = []
    for row in report.scorecard:
        s = row.summary
        name = aspect_label(row.aspect)
        if s.mean is None:
            out.append((name, str(s.n), HIDDEN, "", STATUS_NL[s.status], "", "", "", "", ""))
            continue
        ci = f"{nl(s.ci.low, 2)} – {nl(s.ci.high, 2)}" if s.ci else "–"
        low = f"{_pct(s.low_share)} ({_pct(s.low_ci.low)}–{_pct(s.low_ci.high)})"
        prev, diff, change = "", "", ""
        if report.compare_period is not None:
            if row.previous is not None and row.previous.mean is not None:
                prev = nl(row.previous.mean)
            elif row.previous is not None:
                prev = HIDDEN
            c = row.comparison
            if c is not None and c.difference is not None:
                diff = ("+" if c.difference > 0 else "") + nl(c.difference, 2)
            if c is None:
                change = row.note
            elif c.mean_test is None:
                change = CHANGE_NL[c.change] + " (indicatief)"
            else:
                change = f"{CHANGE_NL[c.change]} ({_p(c.mean_test.p)})"
        out.append((name, str(s.n), nl(s.mean, 2), ci, STATUS_NL[s.status], low,
                    _pct(s.high_share), prev, diff, change))
    return out


def share_changes(report: Report) -> list[tuple[str, str, str]]:
    """(aspect, change of % 1-5, change of % 8-10) with two-proportion tests, for tested aspects."""
    out = []
    for row in report.scorecard:
        c = row.comparison
        if c is None or c.low_share_test is None:
            continue
        cells = []
        for t in (c.low_share_test, c.high_share_test):
            if t is None:
                cells.append("–")
            else:
                sign = "+" if t.difference > 0 else ""
                verdict = "significant" if t.significant else "niet significant"
                cells.append(f"{sign}{nl(t.difference * 100, 1)} %-punt ({verdict}, p {_p(t.p)})")
        out.append((aspect_label(row.aspect), *cells))
    return out


OTHERS_HEAD = ("Studie", "Periode", "Kanaal", "Aspect", "Gem. (n)", "Balie nu",
               "Verschil", "Verandering (p)")


def others_table(report: Report) -> list[tuple[str, ...]]:
    """Imported figures (other channels, earlier studies) against this period's counter."""
    out = []
    for row in report.others:
        a, c = row.aggregate, row.comparison
        current = next(r.summary for r in report.scorecard if r.aspect == row.aspect)
        now = HIDDEN if current.mean is None else nl(current.mean)
        diff = "" if c.difference is None else ("+" if c.difference > 0 else "") + nl(c.difference, 2)
        change = (CHANGE_NL[c.change] if c.mean_test is None
                  else f"{CHANGE_NL[c.change]} ({_p(c.mean_test.p)})")
        out.append((row.study, row.period, row.channel, aspect_label(row.aspect),
                    f"{nl(a.mean)} ({a.n})", now, diff, change))
    return out


def smiley_table(report: Report) -> list[tuple[str, ...]]:
    out = []
    for row in report.smileys:
        if row.top_share is None:
            out.append((aspect_label(row.aspect), str(row.n), HIDDEN, ""))
            continue
        mark = " (indicatief)" if row.indicative else ""
        out.append((aspect_label(row.aspect), str(row.n), _pct(row.top_share) + mark,
                    f"{_pct(row.top_ci.low)}–{_pct(row.top_ci.high)}"))
    return out


def drivers_table(report: Report) -> list[tuple[str, ...]]:
    out = []
    for aspect, d in report.drivers.items():
        if d is None:
            out.append((aspect_label(aspect), "", "te weinig complete antwoorden (< 30)"))
        elif d.r is None:
            out.append((aspect_label(aspect), str(d.n), "geen spreiding: geen correlatie"))
        else:
            kind = " (smiley)" if aspect in {s.aspect for s in report.smileys} else ""
            out.append((aspect_label(aspect) + kind, str(d.n),
                        f"r = {nl(d.r, 2)} ({nl(d.ci.low, 2)} – {nl(d.ci.high, 2)})"))
    return out


def _cell(s: Summary | None) -> str:
    if s is None:
        return ""
    if s.mean is None:
        return HIDDEN
    return nl(s.mean) + ("*" if s.status == Status.NOT_TESTED else "")


def service_table(report: Report) -> list[tuple[str, ...]]:
    return [(label, *(_cell(report.service_grid.get((value, a))) for a in report.aspects))
            for value, label in report.services]


def heat_table(report: Report) -> list[tuple[str, ...]]:
    days = sorted({d for d, _ in report.heatmap})
    return [(weekday_label(d), *(_cell(report.heatmap.get((d, p))) for p in PARTS)) for d in days]


def method_lines(report: Report) -> list[str]:
    """The method note as sentences (Dutch), the same in HTML and PDF."""
    m = report.method
    tz = ZoneInfo(m.timezone)
    lines = [
        f"Periode: {m.period.label} (hele dagen, tijd {m.timezone}); {m.responses} responsen."
        + (f" Vergeleken met {m.compare_period.label} ({m.compare_responses} responsen)."
           if m.compare_period is not None else ""),
        f"Doel: een {nl(m.target)} op elk aspect. Intervallen: {m.confidence * 100:.0f} %. "
        f"Significantieniveau (alfa) van elke toets: {nl(m.alpha, 2)}, tweezijdig "
        "(gemiddelden: Welch-toets; aandelen: toets voor twee proporties).",
        f"Kleine groepen: minder dan {m.thresholds.min_shown} antwoorden wordt nergens getoond "
        f"(ook niet in grafieken); {m.thresholds.min_shown} tot {m.thresholds.min_tested} "
        "antwoorden is indicatief (gemarkeerd met *), zonder toets tegen het doel of een "
        "vorige periode. Er is geen medewerker-dimensie: de terminal legt geen medewerker vast.",
        "Alleen vragen van het type rapportcijfer (1–10) tellen mee in gemiddelden en het doel; "
        "smileyvragen staan apart (aandeel van de twee blijste gezichten) en tellen mee in de "
        "kerndrijvers.",
        f"Weggelaten: {m.suspect} respons(en) gemarkeerd als verdacht (snel herhaalde sessies). "
        f"{m.idle} respons(en) zijn door inactiviteit beëindigd en tellen mee met de antwoorden "
        "die er zijn.",
    ]
    if m.weighting is not None:
        w = m.weighting
        overall = next(iter(w.coverage), None)
        lines.append(
            f"Gewogen (poststratificatie) naar het aantal bezoekers per weekdag × dagdeel "
            f"({w.source or 'bezoekersaantallen'}, {w.cells} cellen): de scorekaart en de "
            "thermometer, in beide perioden met dezelfde verdeling van bezoekers. De intervallen "
            "gebruiken de effectieve steekproefomvang (Kish)."
            + (f" {aspect_label(overall)}: {nl(w.coverage[overall] * 100, 0)} % van de bezoekers "
               f"valt in cellen met antwoorden, design-effect {nl(w.design_effect[overall], 2)}."
               if overall else "")
            + " Verdeling, trend, diensten, weekdag × dagdeel en kerndrijvers zijn ongewogen.")
        if w.empty_cells:
            lines.append("Cellen met bezoekers maar zonder antwoorden (de schatting spreekt niet "
                         "voor deze bezoekers): " + ", ".join(
                             f"{weekday_label(d)} {PART_NL[p]}" for d, p in w.empty_cells) + ".")
    if m.unknown_responses:
        lines.append(f"{m.unknown_responses} respons(en) van een vragenlijstversie die centraal "
                     "niet kent: niet meegeteld.")
    for v in m.versions:
        first = datetime.fromtimestamp(v.first_seen, tz).strftime("%-d-%-m-%Y")
        lines.append(f"Vragenlijst {v.questionnaire_id} versie {v.version}: {v.responses} "
                     f"responsen, vanaf {first}" + ("" if v.known else " (tekst onbekend)") + ".")
    if m.breaks:
        for qid, brk, old, new in m.breaks:
            lines.append(f"Trendbreuk: vraag '{brk.question_id}' ({qid}) heeft vanaf versie "
                         f"{brk.version} een andere tekst: “{old}” werd “{new}”. De trend begint "
                         "daar opnieuw (nieuwe reeks) en wordt niet getoetst tegen de oude tekst.")
    else:
        lines.append("Geen trendbreuken: de vraagteksten zijn in de periode niet gewijzigd.")
    lines.append("Veel toetsen tegelijk: bij 5 % per toets is ongeveer één op de twintig "
                 "'significante' veranderingen toeval. Kerndrijvers tonen samenhang, geen oorzaak.")
    made = datetime.now(timezone.utc).astimezone(tz).strftime("%-d-%-m-%Y %H:%M")
    lines.append(f"Gemaakt met balie-central report op {made}. Berekeningen: central/stats.py "
                 "(zie docs/STATISTICS.md).")
    return lines


# ---------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:"Segoe UI",Arial,Helvetica,sans-serif;color:#1F2933;max-width:60rem;margin:2rem auto;
padding:0 1rem;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:2px solid #0072B2;
padding-bottom:.2rem}.sub{color:#52606D;margin-top:0}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.6rem 0}
th,td{border-bottom:1px solid #E4E7EB;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#F5F7FA}td.num{text-align:right;font-variant-numeric:tabular-nums}
.hidden{color:#6B7785}.alpha{font-size:.82rem;color:#52606D}
img{max-width:100%;height:auto}.note{font-size:.9rem}.method li{margin:.3rem 0}
@media print{body{max-width:none;margin:0}h2{break-after:avoid}img,table{break-inside:avoid}}
"""


def _img(fig: Figure, alt: str) -> str:
    data = base64.b64encode(charts.png_bytes(fig, dpi=110)).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(head, rows, numeric=()) -> str:
    out = ["<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = []
            if i in numeric:
                cls.append("num")
            if cell == HIDDEN:
                cls.append("hidden")
            attr = f' class="{" ".join(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{html.escape(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</tbody></table>"


def _alpha(report: Report) -> str:
    return (f'<p class="alpha">Alfa = {nl(report.alpha, 2)} (tweezijdig); intervallen '
            f'{report.confidence * 100:.0f} %; * = indicatief (10–29 antwoorden, niet getoetst); '
            f'&lt; 10 = minder dan {report.thresholds.min_shown} antwoorden, niet getoond.</p>')


def _figures(report: Report) -> dict[str, Figure]:
    figs = {}
    fig = charts.new_figure((8, 0.55 * len(report.scorecard) + 1.4))
    charts.thermometer(fig.add_subplot(), report)
    figs["thermometer"] = fig
    fig = charts.new_figure((8, 0.45 * len(report.scorecard) + 1.2))
    charts.distribution(fig.add_subplot(), report)
    figs["distribution"] = fig
    fig = charts.new_figure((8, 1.9 * ((len(report.aspects) + 1) // 2) + 0.9))
    charts.trends(fig, report)
    figs["trends"] = fig
    fig = charts.new_figure((8, 0.36 * len(report.services) + 1.6))
    charts.service_grid(fig.add_subplot(), report)
    figs["services"] = fig
    fig = charts.new_figure((6, 2.6))
    charts.heatmap(fig.add_subplot(), report)
    figs["heatmap"] = fig
    fig = charts.new_figure((8, 4.6))
    charts.priority_matrix(fig.add_subplot(), report)
    figs["drivers"] = fig
    return figs


def render_html(report: Report) -> str:
    """The whole report as one self-contained HTML page (Dutch).

    The cyclic garbage collector is paused while it runs (and resumed as it was): matplotlib
    makes tens of thousands of linked objects, and the collections they trigger only walk them
    (about a tenth of the time) while all of them are still in use until the page is done.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _html(report)
    finally:
        if collecting:
            gc.enable()


def _html(report: Report) -> str:
    figs = _figures(report)
    compare = (f" · vergeleken met {html.escape(report.compare_period.label)}"
               if report.compare_period is not None else "")
    parts = [
        "<!DOCTYPE html>", '<html lang="nl"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(report.title)} – {html.escape(report.period.label)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="sub">De thermometer · {html.escape(report.period.label)}{compare} · '
        f"{report.method.responses} responsen · doel {nl(report.target)} op elk aspect</p>",
        "<h2>Scorekaart per aspect</h2>",
        '<p class="note"><b>Gehaald</b>: het hele 95 %-interval ligt boven het doel. <b>Binnen '
        "de marge</b>: het doel ligt in het interval. <b>Onder het doel</b>: het hele interval "
        "ligt eronder." + (WEIGHTED_NOTE if report.method.weighting is not None else "")
        + "</p>",
        _table(SCORECARD_HEAD, scorecard_table(report), numeric=(1, 2, 7, 8)),
        _alpha(report),
    ]
    changes = share_changes(report)
    if changes:
        parts += ["<h3>Veranderingen in de aandelen</h3>",
                  _table(("Aspect", "% 1–5 (onvoldoende)", "% 8–10"), changes), _alpha(report)]
    parts += [
        "<h2>De thermometer</h2>",
        _img(figs["thermometer"], "Gemiddelde per aspect met 95%-interval en de doellijn"),
        "<h2>Verdeling van de cijfers</h2>",
        _img(figs["distribution"], "Aandeel cijfers 1-5, 6, 7, 8 en 9-10 per aspect"),
    ]
    if report.smileys:
        parts += ["<h3>Smileyvragen</h3>",
                  _table(("Vraag (aspect)", "n", "Twee blijste gezichten", "95%-interval"),
                         smiley_table(report), numeric=(1,))]
    if report.others:
        parts += ["<h2>Andere kanalen en eerdere studies</h2>",
                  '<p class="note">Cijfers uit het onderzoek van het onderzoeksbureau (gemiddelde, '
                  "sd en n), vergeleken met de balie in deze periode. Verandering: de balie nu "
                  "ten opzichte van dat cijfer (Welch-toets). Let op: vraagteksten en "
                  "werkwijze kunnen verschillen.</p>",
                  _table(OTHERS_HEAD, others_table(report), numeric=(4, 5, 6)), _alpha(report)]
    parts += [
        "<h2>Trend per maand</h2>",
        '<p class="note">Een lijn wordt onderbroken waar de vraagtekst veranderde (nieuwe reeks) '
        "of een maand minder dan 10 antwoorden had.</p>",
        _img(figs["trends"], "Gemiddelde per maand per aspect met intervalband"),
        "<h2>Dienst × aspect</h2>",
        _img(figs["services"], "Gemiddelde per dienst en aspect"),
        _table(("Dienst", *(aspect_label(a) for a in report.aspects)), service_table(report),
               numeric=tuple(range(1, len(report.aspects) + 1))),
        _alpha(report),
        f"<h2>Weekdag × dagdeel ({html.escape(aspect_label(report.heatmap_aspect).lower())})</h2>",
        _img(figs["heatmap"], "Gemiddelde per weekdag en dagdeel"),
        _table(("Weekdag", *(PART_NL[p] for p in PARTS)), heat_table(report), numeric=(1, 2, 3)),
        _alpha(report),
        "<h2>Kerndrijvers</h2>",
        '<p class="note">Hoe sterk hangt elk aspect samen met het totaaloordeel? Een sterk '
        "verband met een lage score (rechtsonder) is waar verbetering waarschijnlijk het meest "
        "oplevert. Samenhang is geen bewijs van oorzaak.</p>",
        _img(figs["drivers"], "Prioriteitenmatrix: correlatie met het totaaloordeel tegen het "
                              "gemiddelde"),
        _table(("Aspect", "n (paren)", "Correlatie met totaaloordeel (95%-interval)"),
               drivers_table(report), numeric=(1,)),
        "<h2>Verantwoording</h2>",
        '<ul class="method">' + "".join(f"<li>{html.escape(line)}</li>"
                                       for line in method_lines(report)) + "</ul>",
        "</body></html>",
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------------------- PDF (A4)

def _page(title: str, report: Report) -> Figure:
    fig = Figure(figsize=A4_INCHES)
    fig.text(0.07, 0.965, title, fontsize=15, weight="bold", color=charts.INK)
    fig.text(0.07, 0.947, f"{report.title} · {report.period.label}", fontsize=8.5,
             color=charts.GREY)
    return fig


def _footer(fig: Figure, number: int, total: int, report: Report) -> None:
    fig.text(0.07, 0.02, f"Alfa {nl(report.alpha, 2)} · intervallen {report.confidence * 100:.0f} % "
             f"· < {report.thresholds.min_shown} antwoorden niet getoond · * indicatief",
             fontsize=7, color=charts.GREY)
    fig.text(0.93, 0.02, f"pagina {number} van {total}", fontsize=7, color=charts.GREY, ha="right")


def _text_table(fig: Figure, rect, head, rows, col_widths, fontsize=7.2) -> None:
    ax = fig.add_axes(rect)
    ax.set_axis_off()
    table = ax.table(cellText=[list(r) for r in rows], colLabels=list(head), loc="upper left",
                     cellLoc="left", colLoc="left", colWidths=col_widths)
    table.auto_set_font_size(False)
    table.set_fontsize(fontsize)
    table.scale(1, 1.45)
    lines = {0: max(h.count("\n") + 1 for h in head)}
    for r, row in enumerate(rows, start=1):
        lines[r] = max(c.count("\n") + 1 for c in row)
    for (r, _), cell in table.get_celld().items():
        if lines.get(r, 1) > 1:   # Table places rows by their tallest cell
            cell.set_height(cell.get_height() * (1 + 0.75 * (lines[r] - 1)))
        cell.set_edgecolor(charts.LIGHT)
        cell.set_linewidth(0.6)
        if r == 0:
            cell.set_facecolor("#F5F7FA")
            cell.set_text_props(weight="bold")
        elif cell.get_text().get_text() == HIDDEN:
            cell.get_text().set_color(charts.GREY)


def _wrap_lines(text: str, width: int) -> str:
    return charts._wrap(text, width)


def pages(report: Report) -> list[tuple[str, Figure]]:
    """The PDF's pages as A4 figures, named (``scorekaart``, ``verdeling``, ...)."""
    out = []
    # 1. scorecard and thermometer
    fig = _page("De thermometer: scorekaart per aspect", report)
    compare = (f"Vergeleken met {report.compare_period.label}. "
               if report.compare_period is not None else "")
    intro = _wrap_lines(
        f"{report.method.responses} responsen. Doel: een {nl(report.target)} op elk aspect. "
        f"{compare}Gehaald = het hele 95 %-interval ligt boven het doel; binnen de marge = het "
        "doel ligt in het interval; onder het doel = het hele interval ligt eronder."
        + (WEIGHTED_NOTE if report.method.weighting is not None else ""), 120)
    fig.text(0.07, 0.915, intro, fontsize=8.5, va="top", color=charts.INK)
    table_top = min(0.875, 0.905 - 0.0145 * (intro.count("\n") + 1))
    head = PDF_SCORECARD_HEAD[:10 if report.compare_period is not None else 7]
    rows = [r[:len(head)] for r in scorecard_table(report)]
    widths = ((0.12, 0.055, 0.05, 0.1, 0.12, 0.12, 0.05, 0.05, 0.06, 0.275)
              if report.compare_period is not None else (0.17, 0.08, 0.1, 0.14, 0.17, 0.2, 0.1))
    rows = [tuple(_wrap_lines(c, 40) if i == 9 else c for i, c in enumerate(r)) for r in rows]
    height = 0.027 * (len(rows) + 1)
    _text_table(fig, (0.05, table_top - height, 0.9, height), head, rows, widths, fontsize=6.4)
    top = table_top - height - 0.05
    fig.text(0.07, top, "Gemiddelde en 95 %-interval per aspect", fontsize=11, weight="bold",
             color=charts.INK)
    ax = fig.add_axes((0.2, 0.13, 0.72, top - 0.16))
    charts.thermometer(ax, report)
    out.append(("scorekaart", fig))

    # 2. distribution, smileys, share changes
    fig = _page("Verdeling van de cijfers", report)
    ax = fig.add_axes((0.2, 0.60, 0.72, 0.31))
    charts.distribution(ax, report)
    y = 0.50
    changes = share_changes(report)
    if changes:
        fig.text(0.07, y, "Veranderingen in de aandelen (toets voor twee proporties)",
                 fontsize=11, weight="bold")
        _text_table(fig, (0.04, y - 0.03 - 0.03 * (len(changes) + 1), 0.92,
                          0.03 * (len(changes) + 1)),
                    ("Aspect", "% 1–5 (onvoldoende)", "% 8–10"), changes, (0.18, 0.41, 0.41))
        y -= 0.07 + 0.03 * (len(changes) + 1)
    if report.smileys:
        fig.text(0.07, y, "Smileyvragen: aandeel van de twee blijste gezichten", fontsize=11,
                 weight="bold")
        rows = smiley_table(report)
        _text_table(fig, (0.04, y - 0.03 - 0.03 * (len(rows) + 1), 0.92, 0.03 * (len(rows) + 1)),
                    ("Vraag (aspect)", "n", "Twee blijste gezichten", "95%-interval"), rows,
                    (0.3, 0.15, 0.3, 0.25))
    out.append(("verdeling", fig))

    if report.others:   # 2b. the bureau's imported figures
        fig = _page("Andere kanalen en eerdere studies", report)
        fig.text(0.07, 0.915, _wrap_lines(
            "Cijfers uit het onderzoek van het onderzoeksbureau (gemiddelde, sd en n), "
            "vergeleken met de balie in deze periode (Welch-toets). Verandering: de balie nu ten "
            "opzichte van dat cijfer. Let op: vraagteksten en werkwijze kunnen verschillen.", 120),
            fontsize=8.5, va="top")
        rows = others_table(report)[:30]
        height = 0.024 * (len(rows) + 1)
        _text_table(fig, (0.04, 0.85 - height, 0.92, height), OTHERS_HEAD, rows,
                    (0.1, 0.08, 0.1, 0.14, 0.1, 0.08, 0.08, 0.32), fontsize=6.8)
        if len(report.others) > 30:
            fig.text(0.07, 0.05, f"… en {len(report.others) - 30} rijen meer: zie het "
                     "HTML-rapport.", fontsize=7.5, color=charts.GREY)
        out.append(("andere-kanalen", fig))

    # 3. trends
    fig = _page("Trend per maand", report)
    fig.text(0.07, 0.915, _wrap_lines(
        "Gemiddelde per maand met de 95 %-intervalband. Een lijn stopt waar de vraagtekst "
        "veranderde (nieuwe reeks, zie de verantwoording) of waar een maand minder dan "
        f"{report.thresholds.min_shown} antwoorden had.", 120), fontsize=8.5, va="top")
    charts.trends(fig, report, gridspec_kw=dict(left=0.1, right=0.96, top=0.86, bottom=0.13,
                                                hspace=0.35, wspace=0.08))
    out.append(("trend", fig))

    # 4. services and weekday x part of day
    fig = _page("Diensten en momenten", report)
    n_services = max(1, len(report.services))
    ax = fig.add_axes((0.33, 0.52, 0.6, min(0.36, 0.04 * n_services)))
    charts.service_grid(ax, report)
    days = max(1, len({d for d, _ in report.heatmap}))
    ax = fig.add_axes((0.33, 0.12, 0.45, min(0.28, 0.045 * days)))
    charts.heatmap(ax, report)
    charts.grid_legend(fig, report)
    out.append(("diensten-momenten", fig))

    # 5. key drivers
    fig = _page("Kerndrijvers: prioriteitenmatrix", report)
    fig.text(0.07, 0.915, _wrap_lines(
        "Hoe sterk hangt elk aspect samen met het totaaloordeel (correlatie), en hoe hoog is "
        "het gemiddelde? Rechtsonder: sterk verband en een lage score, daar levert verbeteren "
        "waarschijnlijk het meest op. Samenhang is geen bewijs van oorzaak.", 120),
        fontsize=8.5, va="top")
    ax = fig.add_axes((0.12, 0.45, 0.8, 0.4))
    charts.priority_matrix(ax, report)
    rows = drivers_table(report)
    _text_table(fig, (0.04, 0.33 - 0.028 * len(rows), 0.92, 0.028 * (len(rows) + 1)),
                ("Aspect", "n (paren)", "Correlatie met totaaloordeel (95%-interval)"), rows,
                (0.25, 0.15, 0.6))
    out.append(("kerndrijvers", fig))

    # 6. method note
    fig = _page("Verantwoording", report)
    y = 0.915
    for line in method_lines(report):
        wrapped = _wrap_lines(line, 105)
        fig.text(0.07, y, "•", fontsize=9, va="top")
        fig.text(0.09, y, wrapped, fontsize=9, va="top", color=charts.INK, linespacing=1.4)
        y -= 0.0185 * (wrapped.count("\n") + 1) + 0.012
    out.append(("verantwoording", fig))

    for number, (_, page) in enumerate(out, start=1):
        _footer(page, number, len(out), report)
    return out


def render_pdf(report: Report, path: Path) -> int:
    """Write the A4 PDF to ``path`` (via ``*.partial``, renamed when complete); returns pages."""
    partial = path.with_name(path.name + ".partial")
    try:
        figs = pages(report)
        with PdfPages(partial, metadata={"Title": f"{report.title} {report.period.label}",
                                         "Creator": "balie-central report"}) as pdf:
            for _, fig in figs:
                pdf.savefig(fig)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return len(figs)
