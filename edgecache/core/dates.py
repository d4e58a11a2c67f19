"""HTTP dates (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms.

Parsing never raises: a malformed date is ``None``, and callers decide what absence means
(an invalid Expires means "already expired", RFC 9111 §5.3).
"""

from __future__ import annotations

import calendar
import re
import time

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# RFC 9110 §5.6.7 says "GMT" is case-sensitive, but it also asks recipients to be lenient
# with dates (§5.6.7: "recipients ... SHOULD accept all three formats"), and origins do
# send "gmt" or "gMT": a strict reading would turn their Expires into "already expired"
# (§5.3) for no gain. Any case is accepted; any other zone is still invalid.
_IMF = re.compile(
    rb"^[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) [Gg][Mm][Tt]$"
)
_RFC850 = re.compile(
    rb"^[A-Za-z]{6,9}, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) [Gg][Mm][Tt]$"
)
_ASCTIME = re.compile(rb"^[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$")


def _to_epoch(year: int, month_name: bytes, day: int, hh: int, mm: int, ss: int) -> float | None:
    month = _MONTHS.get(month_name.decode("ascii").lower())
    if month is None or not (1 <= day <= 31) or hh > 23 or mm > 59 or ss > 60:
        return None
    try:
        return float(calendar.timegm((year, month, day, hh, mm, min(ss, 59), 0, 0, 0)))
    except (ValueError, OverflowError):
        return None


def parse_http_date(value: bytes | None, now: float | None = None) -> float | None:
    """Seconds since the epoch for an HTTP-date, or None when it is not one.

    ``now`` resolves RFC 850's two-digit years (RFC 9110 §5.6.7: a year that appears more
    than 50 years in the future is taken as the most recent past year with those digits).
    """
    if not value:
        return None
    value = value.strip()
    if m := _IMF.match(value):
        day, mon, year, hh, mi, ss = m.groups()
        return _to_epoch(int(year), mon, int(day), int(hh), int(mi), int(ss))
    if m := _RFC850.match(value):
        day, mon, yy, hh, mi, ss = m.groups()
        year = _full_year(int(yy), now)
        return _to_epoch(year, mon, int(day), int(hh), int(mi), int(ss))
    if m := _ASCTIME.match(value):
        mon, day, hh, mi, ss, year = m.groups()
        return _to_epoch(int(year), mon, int(day.strip()), int(hh), int(mi), int(ss))
    return None


def _full_year(two_digits: int, now: float | None) -> int:
    current = time.gmtime(now if now is not None else 0).tm_year if now is not None else 2000
    century = current - current % 100
    year = century + two_digits
    if year > current + 50:
        year -= 100
    return year


def format_http_date(epoch: float) -> bytes:
    """IMF-fixdate for ``epoch`` (seconds since the epoch, UTC)."""
    t = time.gmtime(int(epoch))
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTH_NAMES[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    ).encode("ascii")
