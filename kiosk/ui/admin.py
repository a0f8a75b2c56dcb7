"""The admin screen: the terminal's state for staff, and their actions (sync, test, preview, leave, stop).

The screen only displays: :class:`~kiosk.admin_status.AdminSnapshot`\\ s
collected off the UI thread, and what the admin control says about a running
action. Its buttons dispatch events the control binds.
"""

from __future__ import annotations

import time

from kivy.properties import BooleanProperty, DictProperty, ObjectProperty, OptionProperty, StringProperty
from kivy.uix.screenmanager import Screen

from kiosk.i18n import N_
from kiosk.ui.widgets import ReusableModalView

#: The rows of the status table: key and label (gettext id), top to bottom.
ROWS = (
    ("device", N_("Device")),
    ("location", N_("Location")),
    ("version", N_("App version")),
    ("questionnaire", N_("Questionnaire")),
    ("central", N_("Central")),
    ("last_sync", N_("Last sync")),
    ("backlog", N_("Backlog")),
    ("quarantine", N_("Quarantine")),
    ("buffer", N_("Buffer")),
    ("disk", N_("Disk free")),
    ("clock", N_("Clock")),
    ("last_error", N_("Last error")),
)

#: Why a sync round stopped (sync.uploader.STOP_REASONS), in words.
STOP_REASONS = {
    "done": N_("done"),
    "deadline": N_("out of time"),
    "auth": N_("central refused this terminal"),
    "error": N_("central refused the data"),
    "buffer": N_("the buffer could not be read"),
    "busy": N_("another round was running"),
    "not_enrolled": N_("not enrolled"),
    "stopped": N_("stopped"),
}


#: Why the buffer cannot take writes (kiosk.errors.BUFFER_FAULTS), in words.
BUFFER_FAULTS = {
    "full": N_("NOT writable: the disk is full"),
    "read_only": N_("NOT writable: read-only (file system or file)"),
    "io": N_("NOT writable: input/output error"),
    "locked": N_("NOT writable: locked by another process"),
    "damaged": N_("NOT writable: the file is damaged"),
}
NOT_WRITABLE = N_("NOT writable")


def buffer_text(snapshot, _) -> str:
    """The buffer row: "writable", or why not and that the terminal is out of order."""
    if snapshot.buffer_writable:
        return _("writable")
    text = _(BUFFER_FAULTS.get(snapshot.buffer_fault_cause, NOT_WRITABLE))
    if snapshot.buffer_read_only:
        text += " · " + _("opened read-only at start")
    return text + " · " + _("out of order")


def when(wall: float | None) -> str:
    """A wall-clock time as ``2026-11-27 14:05:09`` (local time); empty for ``None``."""
    if wall is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall))


def size_text(n: int) -> str:
    """Bytes as ``12.3 GB`` (decimal units, as disk makers and ``df -H`` count)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def describe(snapshot, _) -> dict[str, str]:
    """The status table's values for ``snapshot``, in the language of ``_`` (a translator's ``_``)."""
    s = snapshot
    unknown = _("unknown")
    if s.last_sync is not None:
        ls = s.last_sync
        reason = _(STOP_REASONS.get(ls.stopped_reason, ls.stopped_reason))
        if ls.ok:
            last_sync = _("{time}: OK, {sent} sent").format(time=when(ls.at) or "?", sent=ls.sent)
        else:
            last_sync = _("{time}: not finished ({reason}), {sent} sent").format(
                time=when(ls.at) or "?", reason=reason, sent=ls.sent)
    else:
        last_sync = _("none since the terminal started")
    if s.sync_running:
        last_sync = _("running now") + " · " + last_sync
    if not s.enrolled:
        last_sync = _("not enrolled: this terminal does not sync")
    synced = {True: _("synchronised (NTP)"), False: _("not synchronised"),
              None: _("synchronisation unknown")}[s.clock_synced]
    if s.last_error:
        last_error = f"{when(s.last_error_at)}  {s.last_error}".strip()
    else:
        last_error = _("none")
    return {
        "device": s.device_id or _("not enrolled"),
        "location": f"{s.location_name} ({s.location_id})",
        "version": s.app_version,
        "questionnaire": _("{id}, version {version}").format(id=s.questionnaire_id,
                                                            version=s.questionnaire_version),
        "central": s.central_url or _("not enrolled"),
        "last_sync": last_sync,
        "backlog": (_("{n} responses waiting ({answers} answers)").format(
            n=s.backlog, answers=s.backlog_answers) if s.backlog is not None else unknown),
        "quarantine": (_("{n} responses").format(n=s.quarantined)
                       if s.quarantined is not None else unknown),
        "buffer": buffer_text(s, _),
        "disk": size_text(s.disk_free) if s.disk_free is not None else unknown,
        "clock": f"{when(s.wall)}, {synced}",
        "last_error": last_error,
    }


class StopConfirm(ReusableModalView):
    """"Stop the kiosk?" with a clear yes and no; dispatches ``on_confirm``."""

    def __init__(self, **kwargs):
        self.register_event_type("on_confirm")
        super().__init__(**kwargs)

    def on_confirm(self):
        """Default handler; the admin screen binds the real one."""


class AdminScreen(Screen):
    """Shows a snapshot and the actions' messages; dispatches one event per action.

    Events: ``on_sync_now``, ``on_test_connection``, ``on_preview``,
    ``on_close`` (leave the admin screen), ``on_stop_kiosk`` (after the
    confirmation), ``on_language(code)``.
    ``message`` is a gettext id shown with ``message_args``; ``busy``: an
    action is running (its progress is in the message).
    """

    snapshot = ObjectProperty(None, allownone=True)
    values = DictProperty({key: "" for key, _label in ROWS})  # kv reads root.values['backlog']
    has_error = BooleanProperty(False)
    buffer_fault = BooleanProperty(False)  # the buffer cannot take writes: its row is red
    message = StringProperty("")
    message_args = DictProperty({})
    message_kind = OptionProperty("info", options=["info", "ok", "error"])
    busy = BooleanProperty(False)
    other_language = StringProperty("")  # the language the toggle switches to ("" = no toggle)

    def __init__(self, tr=None, **kwargs):
        for name in ("on_sync_now", "on_test_connection", "on_preview", "on_close",
                     "on_stop_kiosk", "on_language"):
            self.register_event_type(name)
        super().__init__(**kwargs)
        self.tr = tr
        self.confirm = StopConfirm()
        self.confirm.bind(on_confirm=lambda *_: self.dispatch("on_stop_kiosk"))
        if tr is not None:
            tr.bind(lang=lambda *_: self._render())

    def show_snapshot(self, snapshot) -> None:
        """Display ``snapshot`` (on the UI thread)."""
        self.snapshot = snapshot

    def on_snapshot(self, *_):
        self._render()

    def _render(self) -> None:
        if self.snapshot is not None and self.tr is not None:
            self.values = describe(self.snapshot, self.tr._)
            self.has_error = bool(self.snapshot.last_error)
            self.buffer_fault = not self.snapshot.buffer_writable

    def say(self, message: str, kind: str = "info", **args) -> None:
        """Show ``message`` (a gettext id) with its ``{placeholders}`` from ``args``."""
        self.message = ""  # first: the old text must not be formatted with the new arguments
        self.message_args = args
        self.message = message
        self.message_kind = kind

    def ask_stop(self) -> None:
        """Open the confirmation; only its "stop" button stops the kiosk."""
        self.confirm.open(animation=False)

    def on_pre_leave(self, *_):
        if self.confirm.parent is not None:  # never left open over another screen
            self.confirm.dismiss(animation=False)

    # default handlers; the admin control binds the real ones
    def on_sync_now(self):
        pass

    def on_test_connection(self):
        pass

    def on_preview(self):
        pass

    def on_close(self):
        pass

    def on_stop_kiosk(self):
        pass

    def on_language(self, code):
        pass
