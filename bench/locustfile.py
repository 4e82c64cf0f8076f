"""Locust: grid workers' phones syncing visit batches and polling their tasks and inbox.

Run by `python -m bench.load`, which seeds the database, starts the API and writes the plan
this file reads (GRIDWORK_LOAD_PLAN: the workers, their tokens and their households). Each
simulated user is one worker: every 20-40 s (GRIDWORK_LOAD_THINK) its phone syncs a small
batch of visits recorded offline (sometimes resending the last batch, as a phone does when an
answer was lost) or polls its task list, unread count and inbox. Any non-2xx answer, and any
visit the API rejects or fails to recognise as a duplicate, counts as an error.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from locust import FastHttpUser, between, task

LOCAL = ZoneInfo("Asia/Shanghai")
with open(os.environ["GRIDWORK_LOAD_PLAN"], encoding="utf-8") as fh:
    PLAN = json.load(fh)
_NEXT = itertools.count()


# Think time between a phone's actions, seconds ("min,max"); bench.load --think sets it.
THINK = tuple(float(x) for x in os.environ.get("GRIDWORK_LOAD_THINK", "20,40").split(","))


class GridWorker(FastHttpUser):
    wait_time = between(*THINK)

    def on_start(self) -> None:
        worker = PLAN["workers"][next(_NEXT) % len(PLAN["workers"])]
        self.auth = {"Authorization": f"Bearer {worker['token']}"}
        self.households = worker["households"]
        self.rng = random.Random(worker["id"])
        self.last_batch: list[dict] | None = None

    def _visit(self) -> dict:
        household_id, lon, lat = self.rng.choice(self.households)
        return {
            "id": str(uuid.uuid4()),
            "household_id": household_id,
            "visited_at": datetime.now(UTC).astimezone(LOCAL).isoformat(),
            "location": {
                "lon": lon + self.rng.uniform(-0.00005, 0.00005),
                "lat": lat + self.rng.uniform(-0.00005, 0.00005),
                "accuracy_m": self.rng.choice([5.0, 10.0, 20.0]),
                "datum": "wgs84",
                "provider": "gps",
            },
            "outcome": self.rng.choice(["met", "met", "met", "nobody_home"]),
            "notes": "",
        }

    def _sync(self, items: list[dict], expect: str, name: str) -> None:
        with self.client.post(
            "/api/v1/visits/batch",
            json={"visits": items},
            headers=self.auth,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            try:
                results = response.json()["results"]
                odd = [r for r in results if r["status"] != expect]
            except (ValueError, KeyError, TypeError) as exc:
                # Raised out of the task, locust would count this request nowhere.
                response.failure(f"unreadable answer ({exc!r}): {response.text[:200]}")
                return
            if odd:
                reason = odd[0].get("reason") or odd[0].get("errors") or odd[0]["status"]
                response.failure(f"{len(odd)} of {len(results)} not {expect}: {reason}")

    @task(2)
    def sync_visits(self) -> None:
        items = [self._visit() for _ in range(self.rng.randint(1, 10))]
        self._sync(items, "created", "POST /visits/batch")
        self.last_batch = items

    @task(1)
    def resend_last_batch(self) -> None:
        """The phone never saw the answer to its last sync and sends it again."""
        if self.last_batch:
            self._sync(self.last_batch, "duplicate", "POST /visits/batch (resend)")

    @task(3)
    def poll_tasks(self) -> None:
        self.client.get("/api/v1/tasks?page_size=20", headers=self.auth, name="GET /tasks")

    @task(3)
    def poll_inbox(self) -> None:
        self.client.get(
            "/api/v1/notifications/unread-count",
            headers=self.auth,
            name="GET /notifications/unread",
        )
        self.client.get(
            "/api/v1/notifications?page_size=20", headers=self.auth, name="GET /notifications"
        )
