"""The administrative hierarchy: districts, streets and communities implied by grid codes."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.models import Community, District, Street
from geo.codes import GridCode


def ensure_hierarchy(
    session: Session,
    code: GridCode,
    *,
    district_name: str | None = None,
    street_name: str | None = None,
    community_name: str | None = None,
) -> Community:
    """Create the district, street and community a grid code implies; name them when told."""
    district = session.get(District, code.district_code)
    if district is None:
        district = District(code=code.district_code, name=district_name or code.district_code)
        session.add(district)
    elif district_name and district.name == district.code:
        district.name = district_name
    street = session.get(Street, code.street_code)
    if street is None:
        street = Street(
            code=code.street_code,
            district_code=code.district_code,
            name=street_name or code.street_code,
        )
        session.add(street)
    elif street_name and street.name == street.code:
        street.name = street_name
    community = session.get(Community, code.community_code)
    if community is None:
        community = Community(
            code=code.community_code,
            street_code=code.street_code,
            name=community_name or code.community_code,
            settings={},
        )
        session.add(community)
    elif community_name and community.name == community.code:
        community.name = community_name
    session.flush()
    return community
