"""A calm, modern look: one stylesheet over the Fusion style, light or dark like the system."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


@dataclass(frozen=True)
class Theme:
    dark: bool
    window: str
    sidebar: str
    surface: str
    border: str
    text: str
    muted: str
    accent: str
    accent_text: str
    user_bubble: str
    selection: str
    hover: str
    warning_bg: str
    warning_text: str
    error_bg: str
    error_text: str
    code_background: str


LIGHT = Theme(
    dark=False,
    window="#f6f7f9",
    sidebar="#eceef2",
    surface="#ffffff",
    border="#dfe2e7",
    text="#1f2328",
    muted="#6b7280",
    accent="#5b6ee1",
    accent_text="#ffffff",
    user_bubble="#e3e9ff",
    selection="#d9dffb",
    hover="#e2e5ea",
    warning_bg="#fff4d6",
    warning_text="#6b4e00",
    error_bg="#fde4e4",
    error_text="#8a1c1c",
    code_background="#f1f3f7",
)
DARK = Theme(
    dark=True,
    window="#1b1d21",
    sidebar="#15171a",
    surface="#25282d",
    border="#34383f",
    text="#e6e8eb",
    muted="#9aa1ab",
    accent="#7d8ff5",
    accent_text="#0f1115",
    user_bubble="#2f3a5e",
    selection="#2f3a5e",
    hover="#2a2d33",
    warning_bg="#3d3418",
    warning_text="#f3dc9b",
    error_bg="#4a2226",
    error_text="#ffc9c9",
    code_background="#1c1e22",
)


def system_prefers_dark(app: QGuiApplication) -> bool:
    scheme = app.styleHints().colorScheme()
    if scheme != Qt.ColorScheme.Unknown:
        return scheme == Qt.ColorScheme.Dark
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def current_theme(app: QGuiApplication | None = None) -> Theme:
    app = app or QGuiApplication.instance()
    return DARK if app is not None and system_prefers_dark(app) else LIGHT


def apply_theme(app: QApplication) -> Theme:
    """Style the whole application, and follow the system when it switches light/dark."""
    theme = current_theme(app)
    app.setStyle("Fusion")
    app.setPalette(_palette(theme))
    app.setStyleSheet(stylesheet(theme))
    if not app.property("ghostdesk_theme_follows_system"):
        app.setProperty("ghostdesk_theme_follows_system", True)
        app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(app))
    return theme


def _palette(t: Theme) -> QPalette:
    p = QPalette()
    role = QPalette.ColorRole
    for r, color in (
        (role.Window, t.window),
        (role.WindowText, t.text),
        (role.Base, t.surface),
        (role.AlternateBase, t.sidebar),
        (role.Text, t.text),
        (role.Button, t.surface),
        (role.ButtonText, t.text),
        (role.Highlight, t.accent),
        (role.HighlightedText, t.accent_text),
        (role.ToolTipBase, t.surface),
        (role.ToolTipText, t.text),
        (role.PlaceholderText, t.muted),
        (role.Link, t.accent),
        (role.Mid, t.border),
        (role.Midlight, t.hover),
    ):
        p.setColor(r, QColor(color))
    p.setColor(QPalette.ColorGroup.Disabled, role.Text, QColor(t.muted))
    p.setColor(QPalette.ColorGroup.Disabled, role.ButtonText, QColor(t.muted))
    p.setColor(QPalette.ColorGroup.Disabled, role.WindowText, QColor(t.muted))
    return p


def stylesheet(t: Theme) -> str:
    return f"""
QMainWindow, QDialog {{ background: {t.window}; }}
QToolTip {{ background: {t.surface}; color: {t.text}; border: 1px solid {t.border};
    padding: 4px 6px; }}

#Sidebar {{ background: {t.sidebar}; border-right: 1px solid {t.border}; }}
#SidebarTitle {{ color: {t.muted}; font-weight: 600; padding: 2px 4px; }}
#ChatList {{ background: transparent; border: none; outline: 0; }}
#ChatList::item {{ padding: 8px 10px; border-radius: 8px; margin: 1px 0; color: {t.text}; }}
#ChatList::item:hover {{ background: {t.hover}; }}
#ChatList::item:selected {{ background: {t.selection}; color: {t.text}; }}

QPushButton {{ background: {t.surface}; color: {t.text}; border: 1px solid {t.border};
    border-radius: 8px; padding: 6px 14px; }}
QPushButton:hover {{ background: {t.hover}; }}
QPushButton:disabled {{ color: {t.muted}; }}
QPushButton#PrimaryButton {{ background: {t.accent}; color: {t.accent_text};
    border: 1px solid {t.accent}; font-weight: 600; }}
QPushButton#PrimaryButton:hover {{ background: {t.accent}; border-color: {t.text}; }}
QPushButton#PrimaryButton:disabled {{ background: {t.border}; border-color: {t.border};
    color: {t.muted}; }}
QPushButton#PrimaryButton[streaming="true"] {{ background: {t.surface}; color: {t.text};
    border: 1px solid {t.border}; }}

QToolButton#BubbleAction {{ background: transparent; border: none; color: {t.muted};
    padding: 2px 6px; border-radius: 6px; }}
QToolButton#BubbleAction:hover {{ background: {t.hover}; color: {t.text}; }}
QToolButton#BubbleAction:disabled {{ color: {t.border}; }}
QToolButton#BubbleAction[filled="true"] {{ color: {t.accent}; }}
QToolButton#RatingButton {{ background: transparent; border: 1px solid transparent;
    border-radius: 6px; padding: 1px 5px; font-size: 14px; }}
QToolButton#RatingButton:hover {{ background: {t.hover}; }}
QToolButton#RatingButton:checked {{ background: {t.selection}; border-color: {t.accent}; }}
#SignalChip {{ background: {t.code_background}; border: 1px solid {t.border};
    border-radius: 10px; }}
#SignalChip[status="confirmed"] {{ border-color: {t.accent}; }}
#SignalChipLabel {{ color: {t.text}; font-size: 12px; }}
#SignalChip[status="active"] #SignalChipLabel {{ color: {t.muted}; }}
QToolButton#SignalChipButton {{ background: transparent; border: none; color: {t.muted};
    padding: 0 4px; border-radius: 8px; }}
QToolButton#SignalChipButton:hover {{ background: {t.hover}; color: {t.text}; }}
#FeedbackTotals {{ color: {t.text}; font-size: 14px; }}
QToolButton#RememberButton {{ background: transparent; border: none; color: {t.muted};
    padding: 0 4px; border-radius: 6px; font-size: 11px; }}
QToolButton#RememberButton:hover {{ background: {t.hover}; color: {t.text}; }}
QToolButton#RecalledToggle {{ background: transparent; border: none; color: {t.muted};
    padding: 1px 2px; font-size: 12px; }}
QToolButton#RecalledToggle:hover {{ color: {t.text}; }}
#RecalledRow {{ background: {t.code_background}; border: 1px solid {t.border};
    border-radius: 8px; }}
#RecalledText {{ color: {t.text}; font-size: 12px; }}
#RecalledScore {{ color: {t.muted}; font-size: 11px; padding: 2px 4px; }}
#RecalledRow QToolButton:checked {{ color: {t.accent}; }}
#MemoryList::item {{ padding: 3px 2px; }}

#ChatView, #ChatViewport {{ background: {t.window}; border: none; }}
#EmptyState {{ color: {t.muted}; font-size: 15px; }}
#Bubble[role="user"] {{ background: {t.user_bubble}; border-radius: 14px; }}
#Bubble[role="assistant"] {{ background: {t.surface}; border: 1px solid {t.border};
    border-radius: 14px; }}
#BubbleAuthor {{ color: {t.muted}; font-weight: 600; font-size: 12px; }}
#BubbleBody {{ color: {t.text}; background: transparent; }}
#BubbleMeta {{ color: {t.muted}; font-size: 11px; }}
#StoppedMarker {{ color: {t.warning_text}; background: {t.warning_bg}; border-radius: 6px;
    padding: 1px 6px; font-size: 11px; }}
#ContextNote {{ color: {t.muted}; font-size: 11px; font-style: italic; }}

#Composer {{ background: {t.window}; }}
#ComposerFrame {{ background: {t.surface}; border: 1px solid {t.border}; border-radius: 12px; }}
#ComposerEdit {{ background: transparent; border: none; color: {t.text}; }}

#Banner[kind="info"] {{ background: {t.selection}; border-radius: 8px; }}
#Banner[kind="warning"] {{ background: {t.warning_bg}; border-radius: 8px; }}
#Banner[kind="error"] {{ background: {t.error_bg}; border-radius: 8px; }}
#Banner QLabel {{ color: {t.text}; }}
#Banner[kind="error"] QLabel {{ color: {t.error_text}; }}
#Banner[kind="warning"] QLabel {{ color: {t.warning_text}; }}
#BannerClose {{ background: transparent; border: none; padding: 0 6px; }}

QStatusBar {{ background: {t.sidebar}; border-top: 1px solid {t.border}; color: {t.muted}; }}
QStatusBar QLabel {{ color: {t.muted}; padding: 0 6px; }}
QStatusBar QLabel#ModelState[state="ready"] {{ color: {t.text}; }}
QStatusBar QLabel#ModelState[state="failed"] {{ color: {t.error_text}; }}
QStatusBar::item {{ border: none; }}

#InlineError {{ color: {t.error_text}; background: {t.error_bg}; border-radius: 6px;
    padding: 6px 8px; }}
#ModelInfo, #FieldHint {{ color: {t.muted}; }}

QScrollBar:vertical {{ background: transparent; width: 10px; margin: 2px; }}
QScrollBar::handle:vertical {{ background: {t.border}; border-radius: 4px; min-height: 30px; }}
QScrollBar::add-line:vertical, QScrollBar::sub-line:vertical {{ height: 0; }}
QScrollBar::add-page:vertical, QScrollBar::sub-page:vertical {{ background: transparent; }}
"""
