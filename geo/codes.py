"""Beijing DB11/T 2157-2023 grid codes: district (GB/T 2260), street, community, grid sequence."""

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "PROVINCE_CODES",
    "CodeError",
    "GridCode",
    "Level",
    "level_of",
    "parse_community_code",
    "parse_district_code",
    "parse_street_code",
]

Level = Literal["district", "street", "community", "grid"]

# First two digits of a GB/T 2260 administrative code: the provinces, autonomous regions and
# municipalities, Taiwan (71) and the two special administrative regions (81, 82).
PROVINCE_CODES = frozenset(
    f"{n:02d}"
    for n in [
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
    ]
)

_LEVEL_BY_LENGTH: dict[int, Level] = {6: "district", 9: "street", 12: "community", 15: "grid"}


class CodeError(ValueError):
    """A grid, community, street or district code that does not follow DB11/T 2157-2023."""


def _check_digits(code: object, length: int, what: str) -> str:
    if not isinstance(code, str):
        raise CodeError(f"{what} must be a string of {length} digits, got {type(code).__name__}")
    # str.isdigit() accepts non-ASCII digits such as "１" or "²"; codes are ASCII only.
    if len(code) != length or not (code.isascii() and code.isdigit()):
        raise CodeError(f"{what} must be exactly {length} digits (0-9), got {code!r}")
    return code


def _check_district(district: str, whole: str) -> None:
    if district[:2] not in PROVINCE_CODES:
        raise CodeError(
            f"code {whole!r} starts with {district[:2]!r}, which is not a GB/T 2260 province code"
        )
    if district[2:] == "0000":
        raise CodeError(
            f"code {whole!r} has district part {district!r}, which is a province, not a district"
        )


def _check_part(part: str, name: str, whole: str) -> None:
    if part == "000":
        raise CodeError(f"code {whole!r} has {name} 000; {name}s are numbered from 001")


def parse_district_code(s: str) -> str:
    """Validate a 6-digit GB/T 2260 district code and return it."""
    code = _check_digits(s, 6, "a district code")
    _check_district(code, code)
    return code


def parse_street_code(s: str) -> tuple[str, str]:
    """Split a 9-digit street code into (district, street), validating both."""
    code = _check_digits(s, 9, "a street code")
    _check_district(code[:6], code)
    _check_part(code[6:9], "street", code)
    return code[:6], code[6:9]


def parse_community_code(s: str) -> tuple[str, str, str]:
    """Split a 12-digit community code into (district, street, community), validating each."""
    code = _check_digits(s, 12, "a community code")
    district, street = parse_street_code(code[:9])
    _check_part(code[9:12], "community", code)
    return district, street, code[9:12]


@dataclass(frozen=True)
class GridCode:
    """A 15-digit grid code: 6 district + 3 street + 3 community + 3 grid sequence digits."""

    district: str
    street: str
    community: str
    seq: str

    @classmethod
    def parse(cls, s: str) -> "GridCode":
        """Parse and validate a 15-digit grid code, raising :class:`CodeError` if it is wrong."""
        code = _check_digits(s, 15, "a grid code")
        _check_district(code[:6], code)
        _check_part(code[6:9], "street", code)
        _check_part(code[9:12], "community", code)
        _check_part(code[12:15], "grid sequence", code)
        return cls(code[:6], code[6:9], code[9:12], code[12:15])

    @property
    def code(self) -> str:
        """The full 15-digit grid code."""
        return self.district + self.street + self.community + self.seq

    @property
    def community_code(self) -> str:
        """The 12-digit code of the community holding this grid."""
        return self.district + self.street + self.community

    @property
    def street_code(self) -> str:
        """The 9-digit code of the street (township) holding this grid."""
        return self.district + self.street

    @property
    def district_code(self) -> str:
        """The 6-digit GB/T 2260 code of the district holding this grid."""
        return self.district

    def __str__(self) -> str:
        return self.code


def level_of(code: str) -> Level:
    """The administrative level a code names, by its length: 6, 9, 12 or 15 digits.

    Only the length and the digits are checked; parse the code to validate its parts.
    """
    level = None
    if isinstance(code, str) and code.isascii() and code.isdigit():
        level = _LEVEL_BY_LENGTH.get(len(code))
    if level is None:
        raise CodeError(f"cannot tell the level of {code!r}: codes have 6, 9, 12 or 15 digits")
    return level
