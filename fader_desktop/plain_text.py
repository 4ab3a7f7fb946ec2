"""Text from outside the app shown by Qt exactly as it is written.

A model's name, description, attribute names and value labels (read from a .fader file anyone may
have made), file and folder names, and the error messages that quote them are plain text. QLabel,
QMessageBox and tooltips guess whether a text is HTML (Qt.mightBeRichText), so an attribute named
"<b>Sm</b><font size=7>RED</font>" showed as a huge word, "<img src=/etc/passwd>" made Qt load
that file as an image, and a path holding "<font …>" no longer showed the path.

- A label or message box that shows such text is set to plain text: `plain(widget)`.
- A tooltip has no text format to set: `literal_tip(text)` is rich text whose visible content is
  `text`, every character, space and line break as written, and that takes the size the plain
  tooltip took (no wrapping, as Qt wraps only rich tooltips). A screen reader reads a widget's
  tooltip where it has no accessible description, markup and all ("<div style=…>"):
  `set_literal_tip(widget, text)` sets the tooltip and the text, in words, as the description.
- A label that stays rich (intentional formatting) escapes the outside parts with html.escape.
- `no_mnemonic(text)`: an action's or a button's text, whose "&" would mark a shortcut letter.
"""
from __future__ import annotations

import html

from PySide6.QtCore import Qt


def literal_tip(text: str) -> str:
    """A tooltip showing `text` literally ("" stays "": no tooltip). Qt drops the line break that
    follows the opening tag and the one before the closing tag, so one is added at each end: a
    text that starts or ends with a line break keeps it."""
    if not text:
        return ""
    return f'<div style="white-space:pre">\n{html.escape(text, quote=False)}\n</div>'


# the description set_literal_tip gave a widget: one set by anyone else is theirs, kept
_TIP_SAID = "_literal_tip_description"


def spoken(text: str) -> str:
    """`text` as a screen reader should get it: one line ("…" between numbers said "to", not "ellipsis")."""
    return " ".join(text.split()).replace(" … ", " to ")


def describe(widget, text: str) -> None:
    """Set the widget's accessible description where it differs: each change is announced to a
    screen reader."""
    if widget.accessibleDescription() != text:
        widget.setAccessibleDescription(text)


def set_literal_tip(widget, text: str) -> None:
    """Show `text` as the widget's tooltip, literally (literal_tip), and give it to a screen reader
    as the widget's accessible description, in words. A description set otherwise (one other
    than the last set here, e.g. a fader's value in words) is kept; "" clears the tooltip and the
    description set here."""
    widget.setToolTip(literal_tip(text))
    said, current = spoken(text), widget.accessibleDescription()
    if current != said and (not current or current == widget.property(_TIP_SAID)):
        widget.setAccessibleDescription(said)   # announced to the screen reader as a change
    if widget.accessibleDescription() == said:
        widget.setProperty(_TIP_SAID, said)


def plain(widget):
    """Show a QLabel's or QMessageBox's text (a box's informative text too) as plain text; returns it."""
    widget.setTextFormat(Qt.TextFormat.PlainText)
    return widget


def no_mnemonic(text: str) -> str:
    """The text of an action or button with every "&" shown as one, not as a shortcut's mark."""
    return text.replace("&", "&&")


def with_access_key(text: str, taken: set) -> str:
    """A button's text with an access key ("&Discard": Alt+D) on the first letter of it that no
    other button of the box has (`taken`, lower-case letters; the chosen one is added). A text
    with its own key keeps it (and takes its letter); "&&" is a shown ampersand, no key."""
    i = 0
    while i < len(text) - 1:
        if text[i] == "&":
            if text[i + 1] != "&":
                taken.add(text[i + 1].lower())
                return text
            i += 1
        i += 1
    for i, ch in enumerate(text):
        if ch.isalpha() and ch.lower() not in taken and (i == 0 or text[i - 1] != "&"):
            taken.add(ch.lower())
            return text[:i] + "&" + text[i:]
    return text


def ended(message: str) -> str:
    """A one-line message as a sentence that ends in a full stop (a message from core ends in none),
    for text that goes on after it."""
    message = message.rstrip()
    return message if not message or message[-1] in ".!?…" else message + "."
