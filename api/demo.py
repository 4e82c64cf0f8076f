"""Demo activity: a lived-in week for the demo district, made through the real HTTP API."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta

from flask import Flask
from flask_jwt_extended import create_access_token
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.auth import claims_for
from api.models import Community, Grid, Household, Roster, Task, User, Visit
from api.services.geometry import point_lonlat
from api.services.ledger import community_cadence
from api.services.weeks import LOCAL, current_week, shift_week, week_bounds, week_dates, week_of
from geo.datum import wgs84_to_gcj02

BATCH = 500
HOTLINE = [
    ("complaint", "utility", "楼道灯不亮，老人夜里上下楼不便"),
    ("complaint", "general", "夜间广场舞噪音扰民"),
    ("help", "utility", "地下室下水道堵塞，有异味"),
    ("report", "danger", "3号楼外墙空调架松动，大风天可能坠落"),
    ("consultation", "general", "咨询高龄津贴申请材料"),
    ("suggestion", "general", "建议在小区门口增设快递柜"),
]


class DemoActivity:
    """Visits for last week and this week so far, hotline tasks, and this week's rosters.

    Everything goes through the API with the demo accounts' own tokens, so evidence, scope,
    dispatch and notifications are what production would compute. Deterministic per seed.

    Each request commits on its own, so a run cut short (a crash, Ctrl-C) leaves some parts
    made and others not. Every part is therefore checked and completed on its own: each
    worker's visits of each week (each household's drawn from a generator of its own, so their
    ids are the same on every run and a resent batch comes back as duplicates), each hotline
    ticket (by its number), each community's roster (made, then published). The activity's
    week is the one its first run chose, and its households those registered by then. A rerun
    completes what a crash left undone; after a complete run it changes nothing, whatever was
    done with the demo since (households registered, visits synced dated weeks back); a
    household tagged since with a cadence asking more may get that week's further visit.
    """

    def __init__(self, app: Flask, session: Session, seed: int = 2157) -> None:
        self.app = app
        self.session = session
        self.seed = seed
        self.client = app.test_client()

    def _rng(self, *part: str) -> random.Random:
        """The part's own generator: what it draws does not depend on the parts before it."""
        return random.Random("/".join([str(self.seed), *part]))

    def _auth(self, user: User) -> dict[str, str]:
        token = create_access_token(user, additional_claims=claims_for(user))
        return {"Authorization": f"Bearer {token}"}

    def started(self, grid_codes: list[str]) -> bool:
        """Whether the district has visits already (the activity's first requests made some)."""
        return bool(
            self.session.scalar(
                select(func.count(Visit.id))
                .join(Grid, Visit.grid_id == Grid.id)
                .where(Grid.code.in_(grid_codes))
            )
        )

    def first_batch(self, workers: list[User]) -> tuple[datetime, datetime] | None:
        """When the activity's first batch of visits was received, and its earliest visit;
        None before any. The first batch is the first worker's visits of last week.

        Not the demo workers' earliest visit: one they sync later dated weeks back (a phone
        whose clock was wrong, a visit kept offline) is received after the activity's."""
        if not workers:
            return None
        mine = Visit.worker_id.in_([w.id for w in workers])
        received = self.session.scalar(select(func.min(Visit.received_at)).where(mine))
        if received is None:
            return None
        first = self.session.scalar(
            select(func.min(Visit.visited_at)).where(mine, Visit.received_at == received)
        )
        return received, first

    def week(self, workers: list[User], now: datetime) -> str:
        """The activity's "this week": the week of its first run. Its first visits are last
        week's, so a rerun days later (after a crash) finds that week from the first batch it
        sent and completes that fortnight instead of starting another."""
        today = current_week(now)
        first = self.first_batch(workers)
        if first is None:
            return today
        return min(shift_week(week_of(first[1]), 1), today)

    def run(self, workers: list[User], admins: list[User], now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        this_week = self.week(workers, now)
        # The households of the first run: one registered since (an import trying the demo)
        # is not the activity's to visit on a rerun.
        first = self.first_batch(workers)
        registered_by = first[0] if first is not None else None
        visits = 0
        for worker in workers:
            for week, share in ((shift_week(this_week, -1), 0.93), (this_week, 0.45)):
                visits += self._visit_week(worker, week, now, share, registered_by)
        tasks = sum(self._hotline(admin, i) for i, admin in enumerate(admins))
        rosters = [r for admin in admins if (r := self._roster(admin, this_week)) is not None]
        if not (visits or tasks or rosters):
            return "demo activity: already recorded"
        return f"demo activity: {visits} visits, {tasks} hotline tasks, rosters: " + (
            "; ".join(rosters) or "already made"
        )

    def _visit_week(
        self,
        worker: User,
        week: str,
        now: datetime,
        share: float,
        registered_by: datetime | None = None,
    ) -> int:
        # Each household draws from a generator of its own: with one for the worker's week, a
        # household registered or tagged since the first run moved every draw after it, and a
        # rerun took the week's visits, under new ids, for missing and sent them all again.
        # Keyed by its address and point, which a register seeded again (another database)
        # gives it alike, not by its id.
        def rng(household: Household) -> random.Random:
            lon, lat = point_lonlat(household.location)
            place = (household.building, household.unit, household.floor, household.room)
            return self._rng("visits", worker.username, week, *place, f"{lon:.7f},{lat:.7f}")

        query = select(Household).where(Household.grid_id.in_([g.id for g in worker.grids]))
        if registered_by is not None:
            query = query.where(Household.created_at <= registered_by)
        households = self.session.scalars(query.order_by(Household.id)).all()
        # Working hours Monday to Friday, only the part of the week that has already passed.
        slots = [
            datetime.combine(day, time(9), LOCAL) + timedelta(minutes=m)
            for day in week_dates(week)[:5]
            for m in range(0, 8 * 60, 2)
        ]
        slots = [s for s in slots if s < now]
        if not slots:
            return 0
        draws = {h.id: rng(h) for h in households}
        chosen = [h for h in households if draws[h.id].random() < share]
        chosen.sort(key=lambda h: h.id)
        # One door a slot: early in the week (a Monday morning) the slots gone are fewer than
        # the households drawn, and the worker cannot have been at two doors in one minute.
        del chosen[len(slots) :]
        items = []
        positions = []
        for n, household in enumerate(chosen):
            positions.append(min(len(slots) - 1, n * len(slots) // max(len(chosen), 1)))
            items.append(self._item(draws[household.id], household, slots[positions[-1]]))
        # Households the cadence asks more of (living alone: twice a week) are mostly seen that
        # often, spread over the week's slots; drawn after the first visits, whose ids stay.
        # A slot holds one visit: the worker is at one door at a time (two visits of theirs at
        # the same minute in different buildings are graded impossible_speed).
        cadence = community_cadence(self.session.get(Community, worker.community_code))
        taken = set(positions)
        for household, position in zip(chosen, positions, strict=True):
            per_week = cadence.per_week(household.tags or [])
            for again in range(1, min(per_week, len(slots))):
                if draws[household.id].random() >= 0.85:
                    break
                slot = (position + again * len(slots) // per_week) % len(slots)
                for _ in range(len(slots)):
                    if slot not in taken:
                        break
                    slot = (slot + 1) % len(slots)
                item = self._item(draws[household.id], household, slots[slot])  # alike each run
                if slot not in taken:  # none left free: the week so far is full
                    taken.add(slot)
                    items.append(item)
        batches = [items[start : start + BATCH] for start in range(0, len(items), BATCH)]
        # Batches are sent in order and each commits whole: the last one stored, all are.
        if not batches or self._stored([item["id"] for item in batches[-1]]):
            return 0
        headers = self._auth(worker)
        stored = 0
        for batch in batches:
            response = self.client.post(
                "/api/v1/visits/batch", json={"visits": batch}, headers=headers
            )
            results = response.get_json()["results"]
            stored += sum(1 for r in results if r["status"] == "created")
        return stored

    def _stored(self, ids: list[str]) -> bool:
        return bool(
            self.session.scalar(
                select(func.count(Visit.id)).where(Visit.id.in_([uuid.UUID(i) for i in ids]))
            )
        )

    def _item(self, rng: random.Random, household: Household, at: datetime) -> dict:
        lon, lat = point_lonlat(household.location)
        lon += rng.uniform(-0.0001, 0.0001)
        lat += rng.uniform(-0.0001, 0.0001)
        datum = "wgs84"
        if rng.random() < 0.3:  # phones on a map SDK report GCJ-02
            lon, lat = wgs84_to_gcj02(lon, lat)
            datum = "gcj02"
        outcome = "met" if rng.random() < 0.85 else "nobody_home"
        if household.occupancy == "vacant":
            outcome = "vacant"
        item = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "household_id": household.id,
            "visited_at": at.isoformat(),
            "location": {
                "lon": lon,
                "lat": lat,
                "accuracy_m": round(rng.uniform(5, 40), 1),
                "datum": datum,
                "provider": "gps",
                "mock": False,
            },
            "outcome": outcome,
            "notes": "",
        }
        if outcome == "met" and household.tags and rng.random() < 0.1:
            item["follow_up"] = True
            # Both lists visits produce (需求清单 / 问题清单), by the household (no draw of the
            # generator: the demo's other figures stay as they were).
            if household.id % 3:
                item["follow_up_kind"] = "need"
                item["follow_up_note"] = "需要协助申请居家养老服务"
            else:
                item["follow_up_kind"] = "problem"
                item["follow_up_note"] = "楼道声控灯不亮，老人夜里看不清台阶"
        return item

    def _hotline(self, admin: User, offset: int) -> int:
        grids = self.session.scalars(
            select(Grid).where(Grid.community_code == admin.community_code).order_by(Grid.code)
        ).all()
        created = 0
        for n, (kind, urgency, title) in enumerate(HOTLINE[offset % 2 :: 2] + HOTLINE[:1]):
            homes = self.session.scalars(
                select(Household.id)
                .where(Household.grid_id == grids[n % len(grids)].id)
                .order_by(Household.id)
            ).all()
            household_id = homes[(7 * n) % len(homes)]
            external_id = f"12345-{admin.community_code}-{n}"
            if self.session.scalar(
                select(Task.id).where(Task.source == "hotline", Task.external_id == external_id)
            ):
                continue  # received on an earlier run
            response = self.client.post(
                "/api/v1/tasks",
                headers=self._auth(admin),
                json={
                    "source": "hotline",
                    "type": kind,
                    "urgency": urgency,
                    "title": title,
                    "description": title,
                    "external_id": external_id,
                    "household_id": household_id,
                    "complainant": {"name": "居民", "phone": "13800000000"},
                },
            )
            created += response.status_code == 201
        return created

    @contextmanager
    def _clock_at(self, moment: datetime) -> Iterator[None]:
        """The app's clock stopped at `moment` (FIXED_NOW), then as it was."""
        before = self.app.config.get("FIXED_NOW")
        self.app.config["FIXED_NOW"] = moment
        try:
            yield
        finally:
            self.app.config["FIXED_NOW"] = before

    def _roster(self, admin: User, week: str) -> str | None:
        """The week's roster, generated and published the evening before the week starts, as
        an office does: generated today, a week under way would start today (its days gone
        are not rostered after the fact). None when it was made and published already."""
        held = self.session.execute(
            select(Roster.id, Roster.status).where(
                Roster.community_code == admin.community_code, Roster.week == week
            )
        ).first()
        if held is not None and held.status == "published":
            return None
        with self._clock_at(week_bounds(week)[0] - timedelta(hours=6)):
            if held is None:
                made = self._generate_roster(admin, week)
                if isinstance(made, str):
                    return made
                roster_id = made
            else:  # generated on a run that stopped before publishing it
                roster_id = held.id
            return self._publish_roster(admin, roster_id)

    def _generate_roster(self, admin: User, week: str) -> int | str:
        """The new roster's id, or why none was made."""
        headers = self._auth(admin)
        response = self.client.post(
            f"/api/v1/communities/{admin.community_code}/rosters",
            json={"week": week},
            headers=headers,
        )
        body = response.get_json()
        if response.status_code == 422:
            # A small community cannot staff three at the window and every grid's B-post days:
            # its office keeps two at the window, as small communities do.
            self.client.put(
                f"/api/v1/communities/{admin.community_code}/roster-settings",
                json={"a_min": 2, "a_max": 3},
                headers=headers,
            )
            response = self.client.post(
                f"/api/v1/communities/{admin.community_code}/rosters",
                json={"week": week},
                headers=headers,
            )
            body = response.get_json()
        if response.status_code != 201:
            return f"{admin.community_code} not generated ({body.get('detail')})"
        return body["id"]

    def _publish_roster(self, admin: User, roster_id: int) -> str:
        published = self.client.post(
            f"/api/v1/rosters/{roster_id}/publish", headers=self._auth(admin)
        )
        state = "published" if published.status_code == 200 else "draft"
        return f"{admin.community_code} {state}"
