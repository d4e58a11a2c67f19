"""RFC 8941 Structured Field Values: the Dictionary parser targeted cache-control fields
need (RFC 9213 §2.1). Strict, as §4.2 asks: any error fails the whole field.

Values come back as Python values: int, float (Decimal), str (String), ``Token`` (a
str subclass), bytes (Byte Sequence), bool; an Inner List is a list of ``(value,
parameters)`` pairs. Serialisation is not needed here and not provided.
"""

from __future__ import annotations

import base64
import binascii
import string


class Token(str):
    """An sf-token, told apart from an sf-string."""

    __slots__ = ()


Value = int | float | str | bytes | bool
Parameters = dict[str, Value]
Item = tuple[Value, Parameters]
Member = tuple[Value | list[Item], Parameters]


class ParseError(ValueError):
    pass


_LCALPHA = frozenset(string.ascii_lowercase)
_KEY_FIRST = _LCALPHA | {"*"}
_KEY_REST = _LCALPHA | frozenset(string.digits) | frozenset("_-.*")
_ALPHA = frozenset(string.ascii_letters)
_TCHAR = _ALPHA | frozenset(string.digits) | frozenset("!#$%&'*+-.^_`|~")
_TOKEN_REST = _TCHAR | frozenset(":/")
_BASE64 = frozenset(string.ascii_letters + string.digits + "+/=")


class _Parser:
    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def fail(self, why: str) -> ParseError:
        return ParseError(f"{why} at {self.pos} in {self.text!r}")

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def dictionary(self) -> dict[str, Member]:  # §4.2.2
        result: dict[str, Member] = {}
        while self.pos < len(self.text):
            key = self.key()
            if self.peek() == "=":
                self.pos += 1
                result[key] = self.item_or_inner_list()
            else:
                result[key] = (True, self.parameters())
            self.skip(" \t")
            if self.pos >= len(self.text):
                return result
            if self.peek() != ",":
                raise self.fail("expected ','")
            self.pos += 1
            self.skip(" \t")
            if self.pos >= len(self.text):
                raise self.fail("trailing ','")
        return result

    def item_or_inner_list(self) -> Member:  # §4.2.1.1
        if self.peek() == "(":
            return self.inner_list()
        return self.item()

    def inner_list(self) -> Member:  # §4.2.1.2
        self.pos += 1
        items: list[Item] = []
        while self.pos < len(self.text):
            self.skip(" ")
            if self.peek() == ")":
                self.pos += 1
                return items, self.parameters()
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                raise self.fail("expected ' ' or ')'")
        raise self.fail("unterminated inner list")

    def item(self) -> Item:  # §4.2.3
        return self.bare_item(), self.parameters()

    def parameters(self) -> Parameters:  # §4.2.3.2
        params: Parameters = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = self.key()
            value: Value = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            params[key] = value
        return params

    def key(self) -> str:  # §4.2.3.3
        if self.peek() not in _KEY_FIRST or not self.peek():
            raise self.fail("expected a key")
        start = self.pos
        self.pos += 1
        while self.peek() and self.peek() in _KEY_REST:
            self.pos += 1
        return self.text[start : self.pos]

    def bare_item(self) -> Value:  # §4.2.3.1
        ch = self.peek()
        if ch == "-" or (ch.isdigit() and ch.isascii()):
            return self.number()
        if ch == '"':
            return self.string()
        if ch == "*" or (ch and ch in _ALPHA):
            return self.token()
        if ch == ":":
            return self.byte_sequence()
        if ch == "?":
            return self.boolean()
        raise self.fail("expected an item")

    def number(self) -> int | float:  # §4.2.4
        start = self.pos
        if self.peek() == "-":
            self.pos += 1
        digits_start = self.pos
        decimal = False
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in string.digits:
                self.pos += 1
            elif ch == "." and not decimal:
                if self.pos - digits_start > 12:
                    raise self.fail("decimal too long")
                decimal = True
                self.pos += 1
            else:
                break
            if self.pos - digits_start > (16 if decimal else 15):
                raise self.fail("number too long")
        number = self.text[start : self.pos]
        digits = self.text[digits_start : self.pos]
        if not digits or not digits[0].isdigit():
            raise self.fail("expected digits")
        if not decimal:
            return int(number)
        fraction = digits.partition(".")[2]
        if not 1 <= len(fraction) <= 3:
            raise self.fail("decimal needs 1 to 3 fraction digits")
        return float(number)

    def string(self) -> str:  # §4.2.5
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\":
                escaped = self.peek()
                if escaped not in ('"', "\\") or not escaped:
                    raise self.fail("bad escape")
                out.append(escaped)
                self.pos += 1
            elif ch == '"':
                return "".join(out)
            elif not " " <= ch <= "~":
                raise self.fail("bad character in string")
            else:
                out.append(ch)
        raise self.fail("unterminated string")

    def token(self) -> Token:  # §4.2.6
        start = self.pos
        self.pos += 1
        while self.peek() and self.peek() in _TOKEN_REST:
            self.pos += 1
        return Token(self.text[start : self.pos])

    def byte_sequence(self) -> bytes:  # §4.2.7
        self.pos += 1
        end = self.text.find(":", self.pos)
        if end < 0:
            raise self.fail("unterminated byte sequence")
        encoded = self.text[self.pos : end]
        if not set(encoded) <= _BASE64:
            raise self.fail("bad base64")
        self.pos = end + 1
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise self.fail("bad base64") from None

    def boolean(self) -> bool:  # §4.2.8
        self.pos += 1
        ch = self.peek()
        if ch not in ("0", "1") or not ch:
            raise self.fail("expected ?0 or ?1")
        self.pos += 1
        return ch == "1"


def parse_dictionary(value: bytes) -> dict[str, Member]:
    """An RFC 8941 Dictionary (§4.2, combined field lines joined by commas); raises
    ``ParseError`` on anything invalid, as a failed field must be ignored whole."""
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        raise ParseError("not ASCII") from None
    text = text.strip(" ")
    parser = _Parser(text)
    return parser.dictionary()
