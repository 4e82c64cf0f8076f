"""未诉先办 ("act before the complaint"): the problems that keep coming back to one grid or
community, found in its tasks (every source: the hotline, the window, visits, rounds).

Two readings of the last `weeks` weeks, each beside the same span before it, the rising first:
- **words**: what the tasks' titles keep saying (`phrases`: Chinese runs of two characters or
  more, Latin words and numbers), three tasks or more;
- **places**: a phrase said by three tasks or more within `PLACE_M` of each other
  (`ST_ClusterDBSCAN` over each phrase's tasks): one stairwell's lights, one basement's drain.
  A busy corner whose calls are all different is not a recurring problem.

Titles only: a description may hold what a resident said of themselves (it is sealed at rest,
`EncryptedString`, and withheld from some readers), a title names the problem."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from api.db import set_local
from api.scope import Scope
from api.services.grids import grids_asked
from api.services.names import INVISIBLE
from api.services.tasks import VISIT_FOLLOW_UP_TITLE

MIN_TASKS = 3  # a pattern: three tasks or more
PLACE_M = 50.0  # tasks this close to one another are at one place
MAX_PLACES = 20
MAX_WORDS = 20
# What every call says: left out before the titles are read for words.
FILLER = sorted(
    {
        "居民", "市民", "来电", "反映", "反应", "问题", "社区", "小区", "要求", "希望", "咨询",
        "投诉", "建议", "求助", "举报", "处理", "解决", "情况", "相关", "帮助", "进行", "请求",
        "表示", "存在", "需要", "能否", "是否", "关于", "一下", "如何", "怎么", "什么", "没有",
        "现在", "目前", "已经", "经常", "一直", "严重", "诉求", "工单",
    },
    key=len,
    reverse=True,
)  # fmt: skip
_FILLER = re.compile("|".join(map(re.escape, FILLER)))
# Where, not what: a building, unit, floor or room by its number (3号楼, 2单元, 七层, 12号院);
# 3号楼道 is building 3's stairwell (楼道), not building 3 and 道.
_ADDRESS = re.compile(
    r"[0-9〇零一二三四五六七八九十百]+\s*(?:号楼(?![道梯])|号院|单元|号|栋|幢|层|楼(?![道梯])|室|门)"
)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]{2,}")
_LATIN = re.compile(r"[A-Za-z0-9]{2,}")


# Zero-width characters (U+200B and its kin) that a title pasted from a chat app carries
# between characters: read as nothing, or 楼\u200b道灯 says no 楼道灯.
_DROP_INVISIBLE = dict.fromkeys(map(ord, INVISIBLE))


def _clean(title: str) -> str:
    """A title as its words are read: without zero-width characters, full-width letters and
    digits as their plain forms (ＷｉＦｉ, ５Ｇ: an input method in full-width mode), what every
    call says and the building or unit it names left out (three calls from three buildings
    all say 号楼)."""
    title = _ADDRESS.sub(" ", unicodedata.normalize("NFKC", title.translate(_DROP_INVISIBLE)))
    return _FILLER.sub(" ", title)


def _tokens(title: str) -> tuple[set[str], set[str]]:
    """A cleaned title's Chinese character pairs (bigrams) and its Latin words and numbers,
    lowered."""
    pairs = {run[i : i + 2] for run in _HAN.findall(title) for i in range(len(run) - 1)}
    return pairs, {w.lower() for w in _LATIN.findall(title)}


def phrases(titles: Mapping[int, str], *, at_least: int = MIN_TASKS) -> dict[str, set[int]]:
    """The words `at_least` of the titles ({task id: title}) share: {phrase: task ids}.

    Chinese is not written in words: its character pairs are counted, and the pairs that the
    same tasks share and that stand side by side in a title are joined back into one phrase
    (楼道 + 道灯 -> 楼道灯), with the pairs beside them that the same titles say too: a pair
    is not listed as a fragment of a longer phrase its titles all say (道灯 of 楼道灯). A
    phrase's tasks are those whose titles say it whole. Latin words and numbers count as they
    are (wifi, 5g)."""
    pairs: dict[str, set[int]] = {}
    words: dict[str, set[int]] = {}
    clean = {task_id: _clean(title) for task_id, title in titles.items()}
    for task_id, title in clean.items():
        bigrams, latin = _tokens(title)
        for pair in bigrams:
            pairs.setdefault(pair, set()).add(task_id)
        for word in latin:
            words.setdefault(word, set()).add(task_id)
    found = {w: ids for w, ids in words.items() if len(ids) >= at_least}
    common = {pair: ids for pair, ids in pairs.items() if len(ids) >= at_least}
    groups: dict[frozenset[int], set[str]] = {}
    for pair, ids in common.items():
        groups.setdefault(frozenset(ids), set()).add(pair)
    for ids, group in groups.items():
        # The pairs' order in one title of them all: runs of pairs side by side, one phrase
        # each. A run takes in the pairs beside it that all these titles share too (said by
        # more), so that 道灯 of three titles is said as their 楼道灯, not as a fragment.
        title = clean[min(ids)]

        def inside(i: int, ids: frozenset[int] = ids, title: str = title) -> bool:
            pair = title[i : i + 2]
            return pair in common and common[pair] >= ids

        runs = set()
        for pair in group:  # each run holding one of the group's pairs, read from where it is
            at = title.find(pair)
            while at != -1:
                start, stop = at, at + 1
                while start > 0 and inside(start - 1):
                    start -= 1
                while inside(stop):
                    stop += 1
                runs.add((start, stop))
                at = title.find(pair, at + 1)
        for start, stop in sorted(runs):
            _said(found, title[start : stop + 1], ids, clean, group, at_least)
    return found


def _said(
    found: dict[str, set[int]],
    phrase: str,
    ids: frozenset[int],
    clean: Mapping[int, str],
    group: set[str],
    at_least: int,
) -> None:
    """Adds `phrase` with those of `ids` whose titles say it whole; where too few do (their
    pairs stand apart in some), the group's pairs in it instead."""
    saying = {i for i in ids if phrase in clean[i]}
    if len(saying) >= at_least:
        found.setdefault(phrase, set()).update(saying)
        return
    for i in range(len(phrase) - 1):
        if phrase[i : i + 2] in group:
            found.setdefault(phrase[i : i + 2], set()).update(ids)


# The tasks of the span (`recent`) and of the span before, newest first, with each recent task's
# group of the tasks within reach of one another (DBSCAN of one point: linked by steps of at most
# the reach). A place's tasks, within reach of each other, lie in one group; the groups' reach is
# widened a little, as it is scaled at the mean latitude of all the tasks, not of a phrase's.
_TITLES = text(
    """
WITH t AS (
  SELECT t.id, t.title, t.created_at, t.created_at >= :start AS recent,
         CASE WHEN t.created_at >= :start THEN
           COALESCE(t.location, (SELECT h.location FROM households h WHERE h.id = t.household_id))
         END AS geom
  FROM tasks t
  WHERE t.grid_id = ANY(:grids) AND t.created_at >= :before AND t.created_at < :end
    AND t.status <> 'transferred'
)
SELECT id, title, recent,
       CASE WHEN geom IS NOT NULL THEN
         ST_ClusterDBSCAN(ST_Transform(geom, 3857),
                          -- No task of the span has a point (none in it, only the span
                          -- before's): no latitude to scale at, nothing to cluster either.
                          eps := COALESCE((SELECT :reach * :widen / cos(radians(avg(ST_Y(geom))))
                                           FROM t), :reach),
                          minpoints := 1) OVER (PARTITION BY geom IS NULL)
       END AS component
FROM t
ORDER BY created_at DESC, id DESC
"""
)
_REACH = {"reach": PLACE_M, "widen": 1.01}

# Each recurring phrase's tasks, by place: three of them or more within reach of each other.
_PLACES = text(
    """
WITH m AS (
  SELECT * FROM unnest(CAST(:ids AS integer[]), CAST(:phrases AS text[])) AS m(task_id, phrase)
),
b AS (
  SELECT * FROM unnest(CAST(:before_ids AS integer[]), CAST(:before_phrases AS text[]))
    AS b(task_id, phrase)
),
t AS (
  SELECT m.phrase, t.id, t.grid_id, t.source, t.created_at,
         COALESCE(t.location, h.location) AS geom
  FROM m JOIN tasks t ON t.id = m.task_id LEFT JOIN households h ON h.id = t.household_id
),
c AS (
  -- Web Mercator stretches a metre by 1 / cos(latitude): the reach is scaled to match, at
  -- the tasks' mean latitude (one grid or community: a few kilometres at most).
  SELECT t.*, ST_ClusterDBSCAN(ST_Transform(geom, 3857),
                               eps := (SELECT :reach / cos(radians(avg(ST_Y(geom)))) FROM t),
                               minpoints := :min_tasks) OVER (PARTITION BY phrase) AS cid
  FROM t WHERE geom IS NOT NULL
),
g AS (
  SELECT phrase, cid, array_agg(id ORDER BY created_at DESC, id DESC) AS ids,
         array_agg(source) AS sources, mode() WITHIN GROUP (ORDER BY grid_id) AS grid_id,
         ST_Collect(geom) AS points, ST_Centroid(ST_Collect(geom)) AS centre
  FROM c WHERE cid IS NOT NULL GROUP BY phrase, cid
)
SELECT phrase, ids, sources, grid_id, ST_X(centre) AS lon, ST_Y(centre) AS lat,
       near.building, near.unit,
       (SELECT max(ST_Distance((d).geom::geography, centre::geography))
        FROM ST_Dump(points) d) AS radius_m,
       -- The span before: its tasks saying the same (found in their titles as the span's
       -- are read, :before_ids) within reach of any of these.
       (SELECT count(*) FROM b JOIN tasks p ON p.id = b.task_id
        LEFT JOIN households ph ON ph.id = p.household_id
        WHERE b.phrase = g.phrase
          AND ST_DWithin(COALESCE(p.location, ph.location)::geography, points::geography,
                         :reach)) AS previous
FROM g
-- Where it is, as the grid's people say it: its grid's registered entrance nearest the centre,
-- in metres (in degrees, one of longitude being shorter, an entrance east would seem farther
-- than one as far north), the first registered of several at one point.
LEFT JOIN LATERAL (
  SELECT h.building, NULLIF(h.unit, '') AS unit FROM households h
  WHERE h.grid_id = g.grid_id AND h.removed_at IS NULL
    AND ST_DWithin(h.location::geography, g.centre::geography, :reach)
  ORDER BY ST_Distance(h.location::geography, g.centre::geography), h.id LIMIT 1
) near ON true
"""
)


def recurring(
    session: Session,
    scope: Scope,
    *,
    now: datetime,
    weeks: int = 4,
    grid: str | None = None,
    community: str | None = None,
) -> dict[str, Any]:
    """What recurs in one grid or community the caller can see, over the `weeks` weeks to
    `now`, beside the same span before it. 404 for a grid or community not theirs."""
    grids = {
        row.id: row.code for row in grids_asked(session, scope, grid=grid, community=community)
    }
    span = timedelta(weeks=weeks)
    start, before = now - span, now - 2 * span
    # Both statements' costs are estimated far past jit_above_cost (ST_Dump's thousand rows a
    # place, guessed): PostgreSQL spent ~470 ms compiling the places' that runs in ~10 ms (a
    # community's month), ~400 ms the titles'.
    set_local(session, jit="off")
    titles: dict[str, dict[int, str]] = {"now": {}, "before": {}}
    counted = Counter()
    near: dict[int, int] = {}
    rows = session.execute(
        _TITLES, {"grids": list(grids), "before": before, "start": start, "end": now, **_REACH}
    )
    for task_id, title, recent, component in rows:
        when = "now" if recent else "before"
        counted[when] += 1
        # A visit's follow-up given no title of its own is titled by the system (what was
        # found is in its sealed note): no words. One the worker titled ("3号楼楼道灯不亮")
        # says what residents said at the door, and counts as any task's title.
        if title != VISIT_FOLLOW_UP_TITLE:
            titles[when][task_id] = title
        if component is not None:
            near[task_id] = component
    said = phrases(titles["now"])
    said_before = _said_before(said, titles["before"])
    return {
        "grid": grid,
        "community": community,
        "weeks": weeks,
        "start": start,
        "end": now,
        "previous_start": before,
        "tasks": counted["now"],
        "previous_tasks": counted["before"],
        "places": _places(session, grids, _near_enough(said, near), said_before),
        "words": _words(said, said_before, titles["now"]),
    }


def _said_before(said: Mapping[str, Any], titles: Mapping[int, str]) -> dict[str, list[int]]:
    """{phrase: the span before's tasks saying it}, its titles read as the span's are: a
    Chinese phrase anywhere in the title, a Latin word or number as a word (wifi6 does not say
    wifi). A Chinese phrase is looked for only in the titles holding all its character pairs
    (a title is read once, not once a phrase: thousands of phrases by thousands of titles
    took seconds)."""
    earlier = {task_id: _clean(title) for task_id, title in titles.items()}
    by_pair: dict[str, set[int]] = {}
    by_word: dict[str, list[int]] = {}
    for task_id, title in earlier.items():
        pairs, latin = _tokens(title)
        for pair in pairs:
            by_pair.setdefault(pair, set()).add(task_id)
        for word in latin:
            by_word.setdefault(word, []).append(task_id)
    found = {}
    for phrase in said:
        if _LATIN.fullmatch(phrase):
            found[phrase] = by_word.get(phrase, [])
            continue
        pairs = sorted(
            (by_pair.get(phrase[i : i + 2], set()) for i in range(len(phrase) - 1)), key=len
        )
        found[phrase] = [i for i in set.intersection(*pairs) if phrase in earlier[i]]
    return found


def _near_enough(said: dict[str, set[int]], near: Mapping[int, int]) -> dict[str, set[int]]:
    """Of the phrases, those `MIN_TASKS` of whose tasks stand in one group of the span's tasks
    within reach of each other (`near`: {task id: its group}): only they can make a place.
    Thousands of phrases whose tasks lie apart (long, varied titles) took seconds to cluster."""
    found = {}
    for phrase, ids in said.items():
        groups = Counter(near[i] for i in ids if i in near)
        if groups and max(groups.values()) >= MIN_TASKS:
            found[phrase] = ids
    return found


def _rising(item: dict) -> tuple:
    return (-(item["tasks"] - item["previous"]), -item["tasks"])


def _words(
    said: dict[str, set[int]], said_before: dict[str, list[int]], now: dict[int, str]
) -> list[dict]:
    found = [
        {"phrase": phrase, "tasks": len(ids), "previous": len(said_before[phrase])}
        for phrase, ids in said.items()
    ]
    found.sort(key=lambda w: (*_rising(w), w["phrase"]))
    newest = {task_id: rank for rank, task_id in enumerate(now)}  # `now` is newest first
    for word in found[:MAX_WORDS]:
        word["task_ids"] = sorted(said[word["phrase"]], key=newest.__getitem__)
    return found[:MAX_WORDS]


def _places(
    session: Session,
    grids: dict[int, str],
    said: dict[str, set[int]],
    said_before: dict[str, list[int]],
) -> list[dict]:
    pairs = [(task_id, phrase) for phrase, ids in said.items() for task_id in ids]
    if not pairs:
        return []
    rows = session.execute(
        _PLACES,
        {
            "ids": [task_id for task_id, _ in pairs],
            "phrases": [phrase for _, phrase in pairs],
            "before_ids": [i for ids in said_before.values() for i in ids],
            "before_phrases": [p for p, ids in said_before.items() for _ in ids],
            "reach": PLACE_M,
            "min_tasks": MIN_TASKS,
        },
    ).all()
    found = [
        {
            "phrase": row.phrase,
            "grid_code": grids[row.grid_id],
            "lon": row.lon,
            "lat": row.lat,
            "radius_m": round(row.radius_m, 1),
            "building": row.building,
            "unit": row.unit,
            "tasks": len(row.ids),
            "previous": row.previous,
            "sources": dict(Counter(row.sources)),
            "task_ids": list(row.ids),
        }
        for row in rows
    ]
    # One phrase's places of as many tasks: the latest-numbered task's first (the statement's
    # order varies).
    found.sort(key=lambda p: (*_rising(p), p["phrase"], -p["task_ids"][0]))
    return found[:MAX_PLACES]
