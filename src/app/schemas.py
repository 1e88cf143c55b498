"""Request and response bodies, validated at the edge: what gets past here is clean text."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated

import msgspec

#: anchored with \A…\Z: `$` would accept a trailing newline
EMAIL_PATTERN = r"\A[^@\s]+@[^@\s]+\.[^@\s]+\Z"
#: bidirectional-text controls that can make a name display as something else
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

EMAIL_MAX_LENGTH = 320
#: what a person is told when an email address fails EMAIL_PATTERN (msgspec's own message
#: quotes the regular expression)
EMAIL_MESSAGE = "Enter an email address like name@example.com."

Email = Annotated[str, msgspec.Meta(pattern=EMAIL_PATTERN, max_length=EMAIL_MAX_LENGTH)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

#: body fields whose pattern failure has a sentence of its own
PATTERN_MESSAGES = {"email": EMAIL_MESSAGE}
#: msgspec's wording of the constraints a form's fields fail (the API tests pin it)
_PATTERN = re.compile(r"Expected `str` matching regex ")
_TOO_LONG = re.compile(r"Expected `str` of length <= (\d+)")
_TOO_SHORT = re.compile(r"Expected `str` of length >= (\d+)")


def readable(field: str, message: str) -> str:
    """A sentence for a person in place of msgspec's ``message`` about body ``field``: the
    field's own sentence for a pattern, the limit for a length; anything else as it is."""
    if _PATTERN.match(message) and field in PATTERN_MESSAGES:
        return PATTERN_MESSAGES[field]
    if m := _TOO_LONG.fullmatch(message):
        return f"Use at most {m[1]} characters."
    if m := _TOO_SHORT.fullmatch(message):
        return "This field is required." if m[1] == "1" else f"Use at least {m[1]} characters."
    return message


def clean_name(value: str) -> str:
    """NFC-normalised, trimmed; control characters and bidi overrides are refused."""
    for ch in value:
        if ch in BIDI_CONTROLS or unicodedata.category(ch) in {"Cc", "Zl", "Zp"}:
            raise ValueError(f"name must not contain control characters (found U+{ord(ch):04X})")
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise ValueError("name must not be blank")
    return name


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/users body."""

    email: Email
    name: Name

    def __post_init__(self) -> None:
        """Normalise what passed the field checks (msgspec reports a ValueError as a 400)."""
        self.name = clean_name(self.name)
        self.email = unicodedata.normalize("NFC", self.email)


class OutboxItem(msgspec.Struct):
    """One email owed to the user."""

    id: int
    subject: str
    status: str
    sent_at: datetime | None


class UserRead(msgspec.Struct):
    """A user with the status of their emails."""

    id: int
    email: str
    name: str
    created_at: datetime
    outbox: list[OutboxItem]
