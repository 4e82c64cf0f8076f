"""Staggered window hours: which of a day's A-post workers takes which time slot (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date


def assign_slots(
    window: Mapping[date, Sequence[int]],
    n_slots: int,
    history: Mapping[int, Sequence[int]] | None = None,
) -> dict[tuple[int, date], int]:
    """The slot (an index into the community's `a_slots`) of each (worker, day) at the window.

    A deterministic pass after the solver, which chose who holds the A-post each day: every
    slot is staffed each day that has the workers for it (one each first, then the others to
    the day's least-staffed slot), and over the week each worker takes the early and the late
    slots about as often. `history`: the slots each worker held in the weeks before, counted
    per slot index; a worker who held the late slot then starts early.

    A worker's "lean" towards a slot is how many more times they held it than their average
    over all slots: each day the pairs (worker, slot) that lean least are taken first, so who
    held one slot more is sent to the others."""
    if n_slots <= 0:
        return {}
    held: dict[int, list[int]] = {}

    def counts(worker: int) -> list[int]:
        if worker not in held:
            past = list((history or {}).get(worker, ()))[:n_slots]
            held[worker] = past + [0] * (n_slots - len(past))
        return held[worker]

    def lean(worker: int, slot: int) -> tuple[int, int, int, int]:
        mine = counts(worker)
        return (mine[slot] * n_slots - sum(mine), mine[slot], worker, slot)

    got: dict[tuple[int, date], int] = {}
    for day in sorted(window):
        free = sorted(set(window[day]))
        open_slots = list(range(n_slots))
        staffed = [0] * n_slots
        # One worker to each slot first, the pairs that lean least first.
        while free and open_slots:
            worker, slot = min(
                ((w, s) for w in free for s in open_slots), key=lambda pair: lean(*pair)
            )
            free.remove(worker)
            open_slots.remove(slot)
            got[worker, day] = slot
            staffed[slot] += 1
            counts(worker)[slot] += 1
        # The others (a_min above the slots' number) to the day's least-staffed slot.
        for worker in free:
            slot = min(range(n_slots), key=lambda s: (staffed[s], lean(worker, s)))
            got[worker, day] = slot
            staffed[slot] += 1
            counts(worker)[slot] += 1
    return got
