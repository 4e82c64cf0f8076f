"""The workers' app's card of what keeps coming back to my grids (未诉先办), to look out for on
the rounds: GET /api/v1/tasks/recurring of the worker's community, their own grids in it."""

from __future__ import annotations

from tests.e2e.test_app import open_app
from tests.e2e.test_reports import CANNED, COMMUNITY, api_recurring, serve_canned


def card_loaded(page) -> None:
    page.wait_for_selector(f"#recurring-card[data-loaded='{COMMUNITY}:4']")


def test_a_worker_reads_what_keeps_coming_back_to_their_grids(context, page):
    open_app(context, page)
    card_loaded(page)
    answer = api_recurring(page, community=COMMUNITY, weeks=4)
    card = page.locator("#recurring-card")
    assert "反复出现的问题（未诉先办）" in card.inner_text()
    assert card.locator(".status").inner_text() == (
        f"本期工单 {answer['tasks']} 件，前期 {answer['previous_tasks']} 件。"
    )
    assert card.locator("ul.places li").count() == len(answer["places"])
    assert card.locator("ul.words li").count() == len(answer["words"])


def test_each_place_is_a_line_to_take_on_the_rounds(context, page):
    serve_canned(page)
    open_app(context, page)
    card_loaded(page)
    (place,) = page.locator("#recurring-card ul.places li").all_inner_texts()
    assert (
        " ".join(place.split())
        == "楼道灯 3 ↑2 3号楼2单元附近，约12米内 · 12345热线 2 · 窗口 1 · #12 #11 #10"
    )
    words = page.locator("#recurring-card ul.words li").all_inner_texts()
    assert [" ".join(w.split()) for w in words] == ["楼道灯 3 ↑2", "wifi 4 持平"]
    assert CANNED["places"][0]["phrase"] == "楼道灯"


def test_the_community_admin_has_no_such_card_in_the_app(context, page):
    """The office reads it on the reports page; the app's card is for the rounds."""
    open_app(context, page, "admin01")
    assert page.is_hidden("#recurring-card")
