"""Service search without a keyboard: pinyin initials (hz → 护照), full pinyin, English words.

The kiosk's on-screen keyboard has letters only; Chinese names are matched through their pinyin.
"""

from __future__ import annotations

from dataclasses import dataclass

from pypinyin import Style, lazy_pinyin

from hall_devices.layout import Layout


@dataclass(frozen=True)
class Entry:
    service_id: str
    initials: str
    pinyin: str
    english: str


def build_index(layout: Layout) -> list[Entry]:
    entries = []
    for service in layout.services:
        hanzi = "".join(c for c in service.name.zh if "\u4e00" <= c <= "\u9fff")
        entries.append(Entry(service.id, "".join(lazy_pinyin(hanzi, style=Style.FIRST_LETTER)),
                             "".join(lazy_pinyin(hanzi)), service.name.en.lower()))
    return entries


def search(index: list[Entry], query: str) -> list[str]:
    """Service ids matching ``query`` (letters), best first: initials, then full pinyin, English."""
    q = "".join(c for c in query.lower() if c.isalpha())
    if not q:
        return []
    ranked: list[tuple[int, int, str]] = []
    for position, entry in enumerate(index):
        if entry.initials.startswith(q):
            rank = 0
        elif q in entry.initials:
            rank = 1
        elif q in entry.pinyin:
            rank = 2
        elif q in entry.english.replace(" ", "") or any(w.startswith(q) for w in entry.english.split()):
            rank = 3
        else:
            continue
        ranked.append((rank, position, entry.service_id))
    return [service_id for _rank, _position, service_id in sorted(ranked)]
