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
from api.models import Grid, Household, User, Visit
from api.services.geometry import point_lonlat
from api.services.weeks import LOCAL, current_week, shift_week, week_bounds, week_dates
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
    """

    def __init__(self, app: Flask, session: Session, seed: int = 2157) -> None:
        self.app = app
        self.session = session
        self.rng = random.Random(seed)
        self.client = app.test_client()

    def _auth(self, user: User) -> dict[str, str]:
        token = create_access_token(user, additional_claims=claims_for(user))
        return {"Authorization": f"Bearer {token}"}

    def already_done(self, grid_codes: list[str]) -> bool:
        return bool(
            self.session.scalar(
                select(func.count(Visit.id))
                .join(Grid, Visit.grid_id == Grid.id)
                .where(Grid.code.in_(grid_codes))
            )
        )

    def run(self, workers: list[User], admins: list[User], now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        this_week = current_week(now)
        visits = 0
        for worker in workers:
            visits += self._visit_week(worker, shift_week(this_week, -1), now, share=0.93)
            visits += self._visit_week(worker, this_week, now, share=0.45)
        tasks = sum(self._hotline(admin, i) for i, admin in enumerate(admins))
        rosters = [self._roster(admin, this_week) for admin in admins]
        return f"demo activity: {visits} visits, {tasks} hotline tasks, rosters: " + "; ".join(
            rosters
        )

    def _visit_week(self, worker: User, week: str, now: datetime, share: float) -> int:
        households = self.session.scalars(
            select(Household)
            .where(Household.grid_id.in_([g.id for g in worker.grids]))
            .order_by(Household.id)
        ).all()
        # Working hours Monday to Friday, only the part of the week that has already passed.
        slots = [
            datetime.combine(day, time(9), LOCAL) + timedelta(minutes=m)
            for day in week_dates(week)[:5]
            for m in range(0, 8 * 60, 2)
        ]
        slots = [s for s in slots if s < now]
        if not slots:
            return 0
        chosen = [h for h in households if self.rng.random() < share]
        chosen.sort(key=lambda h: h.id)
        items = []
        for n, household in enumerate(chosen):
            at = slots[min(len(slots) - 1, n * len(slots) // max(len(chosen), 1))]
            items.append(self._item(household, at))
        headers = self._auth(worker)
        stored = 0
        for start in range(0, len(items), BATCH):
            response = self.client.post(
                "/api/v1/visits/batch",
                json={"visits": items[start : start + BATCH]},
                headers=headers,
            )
            results = response.get_json()["results"]
            stored += sum(1 for r in results if r["status"] == "created")
        return stored

    def _item(self, household: Household, at: datetime) -> dict:
        lon, lat = point_lonlat(household.location)
        lon += self.rng.uniform(-0.0001, 0.0001)
        lat += self.rng.uniform(-0.0001, 0.0001)
        datum = "wgs84"
        if self.rng.random() < 0.3:  # phones on a map SDK report GCJ-02
            lon, lat = wgs84_to_gcj02(lon, lat)
            datum = "gcj02"
        outcome = "met" if self.rng.random() < 0.85 else "nobody_home"
        if household.occupancy == "vacant":
            outcome = "vacant"
        item = {
            "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "household_id": household.id,
            "visited_at": at.isoformat(),
            "location": {
                "lon": lon,
                "lat": lat,
                "accuracy_m": round(self.rng.uniform(5, 40), 1),
                "datum": datum,
                "provider": "gps",
                "mock": False,
            },
            "outcome": outcome,
            "notes": "",
        }
        if outcome == "met" and household.tags and self.rng.random() < 0.1:
            item["follow_up"] = True
            item["follow_up_note"] = "需要协助申请居家养老服务"
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
            response = self.client.post(
                "/api/v1/tasks",
                headers=self._auth(admin),
                json={
                    "source": "hotline",
                    "type": kind,
                    "urgency": urgency,
                    "title": title,
                    "description": title,
                    "external_id": f"12345-{admin.community_code}-{n}",
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

    def _roster(self, admin: User, week: str) -> str:
        """The week's roster, generated and published the evening before the week starts, as
        an office does: generated today, a week under way would start today (its days gone
        are not rostered after the fact)."""
        with self._clock_at(week_bounds(week)[0] - timedelta(hours=6)):
            return self._generate_roster(admin, week)

    def _generate_roster(self, admin: User, week: str) -> str:
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
        published = self.client.post(f"/api/v1/rosters/{body['id']}/publish", headers=headers)
        state = "published" if published.status_code == 200 else "draft"
        return f"{admin.community_code} {state}"
