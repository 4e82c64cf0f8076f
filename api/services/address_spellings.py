"""Households stored spelled otherwise than the import stores an address now: found, respelled."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from api.services import audit
from api.services.households import (
    _KEY_PARAMS,
    ADDRESS_PARTS,
    SAME_POINT_DEG,
    address_key_sql,
)
from api.services.names import HALF_WIDTH, INVISIBLE, SPACES, address_part

Address = tuple[str, str, str, str]


@dataclass
class Respelling:
    household_id: int
    grid_code: str
    stored: Address
    respelled: Address


@dataclass
class Spellings:
    """What `find_spellings` found: the households to respell, and the addresses registered
    more than once at one point in different spellings (each a list of (household id, its
    stored address), by id), whose households are not respelled."""

    respell: list[Respelling] = field(default_factory=list)
    registered_twice: list[list[tuple[int, Address]]] = field(default_factory=list)


# A stored part that `address_part` may change holds a full-width form, a space separator
# (or starts or ends with a space) or an invisible character; any other is stored as the import
# stores it.
_ODD = f"[{''.join(map(chr, HALF_WIDTH))}{SPACES}{INVISIBLE}]"
_WHERE_COMMUNITY = "(CAST(:community AS text) IS NULL OR g.community_code = :community)"

_ODDLY_SPELLED = text(
    f"""
    SELECT h.id, g.code, h.building, h.unit, h.floor, h.room
    FROM households h JOIN grids g ON g.id = h.grid_id
    -- A household removed from the register is kept as it was registered when it left.
    WHERE {_WHERE_COMMUNITY} AND h.removed_at IS NULL
      AND ({" OR ".join(f"h.{part} ~ CAST(:odd AS text)" for part in ADDRESS_PARTS)})
    ORDER BY h.id
    """
)
# Two households whose parts have one key (names.address_key) at one point (the import's
# repeat: within SAME_POINT_DEG), spelled differently: one flat, registered twice.
_TWICE = text(
    f"""
    WITH k AS (
        SELECT h.id, h.building, h.unit, h.floor, h.room,
               ST_X(h.location) AS x, ST_Y(h.location) AS y,
               {", ".join(f"{address_key_sql(f'h.{part}')} AS k_{part}" for part in ADDRESS_PARTS)}
        FROM households h JOIN grids g ON g.id = h.grid_id
        -- One of them removed as a duplicate (POST /households/{id}/removal): resolved.
        WHERE {_WHERE_COMMUNITY} AND h.removed_at IS NULL)
    SELECT a.id AS a_id, b.id AS b_id
    FROM k a JOIN k b
      ON {" AND ".join(f"a.k_{part} = b.k_{part}" for part in ADDRESS_PARTS)}
     AND a.id < b.id
     AND abs(a.x - b.x) <= :same AND abs(a.y - b.y) <= :same
     AND (a.building, a.unit, a.floor, a.room)
         IS DISTINCT FROM (b.building, b.unit, b.floor, b.room)
    """
)


def find_spellings(session: Session, community: str | None = None) -> Spellings:
    """The households in the register (of `community`, or all; a removed one is kept as it
    left) whose stored address parts `address_part` would spell otherwise (７号楼, 3 号楼:
    stored before the import made them half-width and spaced one way), and the addresses
    registered twice at one point in two spellings.

    Leading zeros and letter case are no other spelling: 0502 and f502 are stored as the
    office wrote them and matched as 502 and F502 (`names.address_key`); invisible characters
    (3<U+200B>号楼) are respelled away. Two households at one point whose addresses differ only
    so are named as registered twice."""
    params = {**_KEY_PARAMS, "community": community}
    pairs = session.execute(_TWICE, {**params, "same": SAME_POINT_DEG}).all()
    group_of: dict[int, set[int]] = {}
    for a, b in pairs:
        merged = group_of.get(a, {a}) | group_of.get(b, {b})
        for member in merged:
            group_of[member] = merged
    found = Spellings()
    twice = {min(group): sorted(group) for group in group_of.values()}
    if twice:
        ids = sorted(group_of)
        stored = {
            r.id: (r.building, r.unit, r.floor, r.room)
            for r in session.execute(
                text(
                    "SELECT id, building, unit, floor, room FROM households "
                    "WHERE id = ANY(CAST(:ids AS integer[]))"
                ),
                {"ids": ids},
            )
        }
        found.registered_twice = [
            [(i, stored[i]) for i in group] for _, group in sorted(twice.items())
        ]
    for row in session.execute(_ODDLY_SPELLED, {"community": community, "odd": _ODD}):
        address = (row.building, row.unit, row.floor, row.room)
        respelled = tuple(address_part(part) for part in address)
        # A building of spaces only would be respelled blank, which no household may be.
        if respelled != address and respelled[0] and row.id not in group_of:
            found.respell.append(Respelling(row.id, row.code, address, respelled))
    return found


def respell(session: Session, found: Spellings, audit_as: audit.Reader) -> list[int]:
    """Store the households of `found.respell` spelled as the import stores an address now,
    in one UPDATE (no history row: the history keeps grids, kinds and tags), audited as an
    update of their address by `audit_as`. The households registered twice are not touched."""
    if not found.respell:
        return []
    columns = {
        "id": [r.household_id for r in found.respell],
        **{part: [r.respelled[i] for r in found.respell] for i, part in enumerate(ADDRESS_PARTS)},
    }
    session.execute(
        text(
            "UPDATE households h SET "
            + ", ".join(f"{part} = u.{part}" for part in ADDRESS_PARTS)
            + ", updated_at = now() FROM unnest(CAST(:id AS integer[]), "
            + ", ".join(f"CAST(:{part} AS text[])" for part in ADDRESS_PARTS)
            + f") AS u(id, {', '.join(ADDRESS_PARTS)}) WHERE h.id = u.id"
        ),
        columns,
    )
    audit.record(
        session,
        user_id=audit_as.user_id,
        action="update",
        resource="household",
        resource_ids=columns["id"],
        fields=("address",),
        ip=audit_as.ip,
        path=audit_as.path,
    )
    return columns["id"]
