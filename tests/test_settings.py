"""kiosk.toml: defaults match the shipped file, paths resolve, and mistakes get clear messages."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from kiosk.errors import ConfigError
from kiosk.paths import assets_dir, config_dir
from kiosk.settings import KioskSettings, contrast_ratio, load_settings, relative_luminance

SHIPPED = config_dir() / "kiosk.toml"


@pytest.fixture
def config_folder(tmp_path) -> Path:
    """A config folder with a questionnaire, as an administrator would set it up."""
    (tmp_path / "vragen").mkdir()
    shutil.copy(config_dir() / "questionnaires" / "standaard.toml", tmp_path / "vragen" / "balie.toml")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "kiosk.toml"
    path.write_text('questionnaire = "vragen/balie.toml"\n' + text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid configuration")
    for leak in ("pydantic", "Traceback", "Input should", "errors.pydantic.dev", "Value error"):
        assert leak not in message
    return caught.value.problems


def only_problem(path: Path) -> str:
    problems = problems_of(path)
    assert len(problems) == 1, problems
    return problems[0]


# --- defaults and the shipped file ----------------------------------------------------------

def test_built_in_defaults_equal_the_shipped_kiosk_toml():
    defaults, shipped = load_settings(None), load_settings(SHIPPED)
    assert isinstance(defaults, KioskSettings)
    assert defaults.model_dump() == shipped.model_dump()


def test_shipped_kiosk_toml_sets_every_default_explicitly_except_the_optional_paths():
    data = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    sections = {name for name, field in KioskSettings.model_fields.items()
                if name != "questionnaire"}
    assert set(data) == sections | {"questionnaire"}
    for name in sections - {"buffer"}:
        model = KioskSettings.model_fields[name].annotation
        expected = set(model.model_fields) - {"logo", "backup_dir"}  # optional paths
        assert set(data[name]) == expected, name


def test_built_in_defaults_have_the_documented_values():
    s = load_settings(None)
    assert s.source_path is None
    assert (s.location.id, s.location.name) == ("balie-1", "Balie 1")
    assert (s.languages.default, s.languages.available) == ("nl", ("nl", "en"))
    assert (s.timeouts.idle_warning_s, s.timeouts.idle_reset_s, s.timeouts.thanks_s,
            s.timeouts.rapid_repeat_s) == (30.0, 15.0, 5.0, 20.0)
    assert isinstance(s.timeouts.idle_warning_s, float)
    assert s.theme.municipality_name == "Gemeente Voorbeeld"
    assert s.admin.pin_hash == ""
    assert (s.display.width, s.display.height, s.display.touch_provider) == (1280, 800, "sdl")
    assert s.data_dir is None


def test_built_in_defaults_point_at_the_shipped_questionnaire_and_logo():
    s = load_settings(None)
    assert s.questionnaire_path == (config_dir() / "questionnaires" / "standaard.toml").resolve()
    assert s.questionnaire_path.is_absolute() and s.questionnaire_path.is_file()
    assert s.theme.logo == (assets_dir() / "logo.png").resolve()


def test_shipped_file_records_where_it_came_from():
    assert load_settings(SHIPPED).source_path == SHIPPED.resolve()


def test_default_theme_passes_the_contrast_check_with_room_to_spare():
    theme = load_settings(None).theme
    for fg, bg in (("text", "background"), ("muted_text", "background"), ("text", "surface"),
                   ("on_primary", "primary")):
        assert contrast_ratio(getattr(theme, fg), getattr(theme, bg)) >= 6.0, (fg, bg)


def test_rgba_gives_kivy_colour_floats():
    theme = load_settings(None).theme
    assert theme.rgba("background") == (1.0, 1.0, 1.0, 1.0)
    r, g, b, a = theme.rgba("primary")
    assert (round(r * 255), round(g * 255), round(b * 255), a) == (0x15, 0x42, 0x73, 1.0)
    with pytest.raises(ValueError):
        theme.rgba("municipality_name")


def test_settings_are_frozen():
    s = load_settings(None)
    with pytest.raises(Exception):
        s.timeouts.thanks_s = 1


# --- paths ------------------------------------------------------------------------------------

def test_relative_paths_resolve_against_the_config_files_folder(config_folder):
    path = write(config_folder, '[theme]\nlogo = "beeld/logo.png"\n[buffer]\ndata_dir = "data"\n')
    s = load_settings(path)
    assert s.questionnaire_path == (config_folder / "vragen" / "balie.toml").resolve()
    assert s.theme.logo == (config_folder / "beeld" / "logo.png").resolve()
    assert s.data_dir == (config_folder / "data").resolve()
    assert s.source_path == path.resolve()


def test_absolute_paths_are_kept(config_folder, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elders")
    path = write(config_folder, f'[buffer]\ndata_dir = "{elsewhere}"\n')
    assert load_settings(path).data_dir == elsewhere.resolve()


def test_a_missing_logo_file_is_not_an_error(config_folder):
    s = load_settings(write(config_folder, '[theme]\nlogo = "bestaat-niet.png"\n'))
    assert s.theme.logo == (config_folder / "bestaat-niet.png").resolve()
    assert not s.theme.logo.exists()


def test_an_empty_logo_means_no_logo(config_folder):
    assert load_settings(write(config_folder, '[theme]\nlogo = ""\n')).theme.logo is None


def test_a_missing_questionnaire_file_names_the_key_and_path(config_folder):
    path = config_folder / "kiosk.toml"
    path.write_text('questionnaire = "vragen/weg.toml"\n', encoding="utf-8")
    assert only_problem(path) == (
        f"questionnaire: file not found: {(config_folder / 'vragen' / 'weg.toml').resolve()}")


def test_a_file_without_questionnaire_key_uses_the_questionnaire_next_to_it(config_folder):
    path = config_folder / "kiosk.toml"
    path.write_text("", encoding="utf-8")
    problem = only_problem(path)
    assert problem.startswith("questionnaire: file not found: ")
    assert str(config_folder) in problem


# --- file-level problems ----------------------------------------------------------------------

def test_missing_settings_file_is_a_clear_error(tmp_path):
    path = tmp_path / "kiosk.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == f"{path}: invalid configuration\n  - file not found"


def test_settings_toml_syntax_error_names_line_and_column(config_folder):
    path = write(config_folder, "[timeouts]\nthanks_s = 5 s\n")
    [problem] = problems_of(path)
    assert problem.startswith("line 3, column 14: ")


# --- value problems ---------------------------------------------------------------------------

def test_misspelt_section_is_refused(config_folder):
    problem = only_problem(write(config_folder, '[thema]\nprimary = "#000000"\n'))
    assert problem.startswith("thema: unknown field; check the spelling")
    assert "theme" in problem


def test_misspelt_key_is_refused(config_folder):
    problem = only_problem(write(config_folder, "[timeouts]\nidle_warning = 30\n"))
    assert problem.startswith("timeouts.idle_warning: unknown field; check the spelling")
    assert "idle_warning_s" in problem


def test_idle_reset_under_five_seconds_is_refused(config_folder):
    assert only_problem(write(config_folder, "[timeouts]\nidle_reset_s = 3\n")) == (
        "timeouts.idle_reset_s: must be at least 5 seconds, got 3; the visitor needs time "
        "to tap 'I'm still here' (WCAG 2.2.1)")


@pytest.mark.parametrize("key", ["idle_warning_s", "thanks_s", "rapid_repeat_s"])
def test_timeouts_must_be_positive(config_folder, key):
    assert only_problem(write(config_folder, f"[timeouts]\n{key} = 0\n")) == (
        f"timeouts.{key}: must be more than 0, got 0")


def test_timeout_given_as_text_is_refused(config_folder):
    assert only_problem(write(config_folder, '[timeouts]\nthanks_s = "5"\n')) == (
        "timeouts.thanks_s: must be a number, got '5'")


def test_fractional_timeouts_are_allowed(config_folder):
    assert load_settings(write(config_folder, "[timeouts]\nthanks_s = 2.5\n")).timeouts.thanks_s == 2.5


def test_default_language_must_be_available(config_folder):
    path = write(config_folder, '[languages]\ndefault = "de"\navailable = ["nl", "en"]\n')
    assert only_problem(path) == "languages: default language 'de' must be one of available (nl, en)"


def test_language_codes_must_be_two_lowercase_letters(config_folder):
    path = write(config_folder, '[languages]\navailable = ["nl", "EN"]\n')
    assert only_problem(path) == (
        "languages.available, entry #2: must be a lowercase 2-letter language code (like 'nl'), got 'EN'")


def test_location_id_must_be_a_slug(config_folder):
    problem = only_problem(write(config_folder, '[location]\nid = "Balie 1"\n'))
    assert problem.startswith("location.id: must be a short code of lowercase letters")


def test_unknown_touch_provider_lists_the_known_ones(config_folder):
    assert only_problem(write(config_folder, '[display]\ntouch_provider = "wm_touch"\n')) == (
        "display.touch_provider: unknown touch provider 'wm_touch'; "
        "use one of sdl, probesysfs, hidinput, mtdev, mouse")


def test_display_size_must_be_positive_whole_pixels(config_folder):
    problems = problems_of(write(config_folder, "[display]\nwidth = 0\nheight = 800.5\n"))
    assert problems == ["display.width: must be more than 0, got 0",
                        "display.height: must be a whole number, got 800.5"]


def test_badly_written_colour_is_refused(config_folder):
    assert only_problem(write(config_folder, '[theme]\naccent = "orange"\n')) == (
        "theme.accent: must be a colour like \"#154273\" (#RRGGBB), got 'orange'")


def test_lowercase_colours_are_accepted_and_normalised(config_folder):
    s = load_settings(write(config_folder, '[theme]\nprimary = "#0b3d91"\n'))
    assert s.theme.primary == "#0B3D91"


def test_low_contrast_text_is_refused_with_pair_and_ratio(config_folder):
    problems = problems_of(write(config_folder, '[theme]\ntext = "#999999"\n'))
    assert problems == [
        "theme: text colour #999999 on background #FFFFFF has contrast 2.8:1; at least 4.5:1 is needed",
        "theme: text colour #999999 on surface #EEF2F7 has contrast 2.5:1; at least 4.5:1 is needed",
    ]


def test_every_low_contrast_pair_is_reported(config_folder):
    path = write(config_folder, '[theme]\nmuted_text = "#AAAAAA"\nprimary = "#7FA7D9"\n')
    problems = problems_of(path)
    assert [p.split(" has ")[0] for p in problems] == [
        "theme: muted_text colour #AAAAAA on background #FFFFFF",
        "theme: on_primary colour #FFFFFF on primary #7FA7D9",
    ]


def test_contrast_just_under_the_limit_is_not_rounded_up_to_a_pass(config_folder):
    # #777777 on white is 4.48:1: it fails, and the message must not say 4.5.
    problem = only_problem(write(config_folder, '[theme]\nmuted_text = "#777777"\n'))
    assert "has contrast 4.4:1" in problem


def test_wcag_luminance_and_contrast_match_known_values():
    assert relative_luminance("#000000") == 0.0
    assert relative_luminance("#FFFFFF") == pytest.approx(1.0)
    assert contrast_ratio("#000000", "#FFFFFF") == pytest.approx(21.0)
    assert contrast_ratio("#FFFFFF", "#000000") == pytest.approx(21.0)
    assert contrast_ratio("#767676", "#FFFFFF") == pytest.approx(4.54, abs=0.01)


def test_every_problem_in_a_settings_file_is_reported(config_folder):
    path = write(config_folder, "[timeouts]\nidle_reset_s = 1\n[display]\nwidth = -1\n")
    assert [p.split(":")[0] for p in problems_of(path)] == ["timeouts.idle_reset_s", "display.width"]


def test_a_whole_number_written_as_float_is_shown_as_written(config_folder):
    assert only_problem(write(config_folder, "[display]\nwidth = 1280.0\n")) == (
        "display.width: must be a whole number, got 1280.0")


# --- [sync] ---------------------------------------------------------------------------------

def test_sync_defaults_have_the_documented_values():
    s = load_settings(None).sync
    assert (s.interval_s, s.jitter_s, s.misfire_grace_s, s.batch_records) == (300, 60, 600, 300)
    assert (s.connect_timeout_s, s.read_timeout_s, s.deadline_s) == (5, 30, 120)
    assert (s.backoff_base_s, s.backoff_cap_s, s.retry_after_cap_s) == (2, 300, 600)


def test_sync_batch_records_is_bounded_by_the_protocol_limit(config_folder):
    assert "sync.batch_records" in only_problem(write(config_folder, "[sync]\nbatch_records = 501\n"))
    assert "sync.batch_records" in only_problem(write(config_folder, "[sync]\nbatch_records = 0\n"))


def test_sync_jitter_may_be_zero_but_intervals_must_be_positive(config_folder):
    assert load_settings(write(config_folder, "[sync]\njitter_s = 0\n")).sync.jitter_s == 0
    assert "sync.interval_s" in only_problem(write(config_folder, "[sync]\ninterval_s = 0\n"))


def test_sync_backoff_cap_below_its_base_is_refused(config_folder):
    message = only_problem(write(config_folder, "[sync]\nbackoff_base_s = 10\nbackoff_cap_s = 5\n"))
    assert "backoff_cap_s" in message and "backoff_base_s" in message
