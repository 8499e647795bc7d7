"""Ticket text measured and wrapped by display width (pure).

A thermal printer's font A is a grid of half-width columns: 48 on 80 mm paper, 32 on 58 mm. A CJK
character (East Asian width W or F, e.g. 号 or the full-width ，) takes two columns, anything else
one. Lines break at sensible places (never at a no-break space, :data:`NBSP`): at a space (which
is dropped), between two CJK characters, or between CJK and Latin text; never inside a Latin word
or number unless the word alone is wider than the line, never before closing punctuation
(，。、：；！？）】 and , . : ; ! ? ) ]) and never after opening punctuation (（【 ( [); a Chinese
clause is kept whole where a pause mark allows.
"""

from __future__ import annotations

import unicodedata
from functools import cache

CLOSING = set("，。、：；！？）】」』》〉,.:;!?)]%")
OPENING = set("（【「『《〈([")
PAUSES = set("，、：；。！？")
NBSP = "\u00a0"  # a space that never breaks (2026-11-23 09:05); printed as a plain space


@cache  # a ticket measures the same few hundred characters over and over (wrap is on the job's path)
def char_width(char: str) -> int:
    """Columns one character takes: 2 for East Asian wide/full-width, 0 for combining marks, else 1."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    if text.isascii():  # every ASCII character is one column (none is wide or combining)
        return len(text)
    return sum(map(char_width, text))


def _tokens(text: str) -> list[str]:
    """Unbreakable pieces: a Latin word, one CJK character, or a run of spaces; punctuation glued
    to its neighbour (closing to the piece before, opening to the piece after)."""
    pieces: list[str] = []
    for char in text:
        last = pieces[-1] if pieces else ""
        if char == " ":
            glue = last.isspace() and last != ""
        else:
            glue = last != "" and not last.isspace() and (
                char in CLOSING or last[-1] in OPENING
                or (char_width(char) == 1 and char_width(last[-1]) == 1))  # a Latin word or a number
        if glue:
            pieces[-1] = last + char
        else:
            pieces.append(char)
    return pieces


def _hard_split(piece: str, columns: int) -> list[str]:
    out, line, width = [], "", 0
    for char in piece:
        w = char_width(char)
        if width + w > columns and line:
            out.append(line)
            line, width = "", 0
        line += char
        width += w
    return [*out, line]


def _at_pause(line: str, columns: int) -> tuple[str, str]:
    """A full line split after its last CJK pause mark (，、：；。！？) when that keeps at least a third
    of the line, so a clause stays whole (前面还有 3 人， / 预计等候约 45 分钟); else the line as is."""
    for i in range(len(line) - 2, 0, -1):
        if line[i] in PAUSES and display_width(line[:i + 1]) >= columns // 3:
            return line[:i + 1], line[i + 1:].lstrip()
    return line, ""


def wrap(text: str, columns: int, indent: str = "") -> list[str]:
    """``text`` as lines of at most ``columns`` display columns; lines after the first start with
    ``indent``. Raises ValueError when ``columns`` leaves no room after the indent."""
    if columns - display_width(indent) < 2:
        raise ValueError(f"{columns} columns leave no room after an indent of {display_width(indent)}")
    lines: list[str] = []
    line, space = "", ""  # the line so far (no trailing space) and the spaces waiting after it
    width = 0  # display_width(line), kept as the line grows: measuring it again per piece is O(n²)
    for piece in _tokens(text):
        if piece.isspace():
            space = piece if line.strip() else ""
            continue
        grown = width + display_width(space + piece)
        if grown <= columns:
            line, space, width = line + space + piece, "", grown
            continue
        if line.strip():
            mid_clause = char_width(line[-1]) == 2 and line[-1] not in PAUSES and char_width(piece[0]) == 2
            head, tail = _at_pause(line, columns) if mid_clause and not space else (line, "")
            lines.append(head)
            line, space = indent + tail, ""
            width = display_width(line)
        if width + display_width(piece) <= columns:  # no space waits here: the line is blank
            line += piece
            width += display_width(piece)
            continue
        parts = _hard_split(piece, columns - display_width(indent))  # one word wider than a line
        for part in parts[:-1]:
            lines.append(line + part)
            line = indent
        line += parts[-1]
        width = display_width(line)
    if line.strip() or not lines:
        lines.append(line)
    return [item.replace(NBSP, " ") for item in lines]
