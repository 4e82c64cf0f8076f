"""The register corrected at the door: the visit form's 住户信息有变化？ goes with the visit."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.e2e.test_app import (
    NO_BACKGROUND_SYNC,
    open_app,
    queue_visit,
    queued_visits,
    unavailable_once_route,
    visited_household,
)


@pytest.fixture()
def household(e2e_engine):
    """A household worker01 visits, its register facts put back as they were at the end."""
    from api.models import Household

    household_id = visited_household(e2e_engine)
    with e2e_engine.connect() as conn:
        was = conn.execute(
            select(Household.occupancy, Household.members, Household.tags).where(
                Household.id == household_id
            )
        ).one()
    yield household_id
    with e2e_engine.begin() as conn:
        conn.execute(
            update(Household)
            .where(Household.id == household_id)
            .values(occupancy=was.occupancy, members=was.members, tags=was.tags)
        )


@pytest.fixture()
def owner_of_three(e2e_engine, household):
    """The household as the register had it when the app read it: owners, three, no tags."""
    from api.models import Household

    with e2e_engine.begin() as conn:
        conn.execute(
            update(Household)
            .where(Household.id == household)
            .values(occupancy="owner", members=3, tags=[])
        )
    return household


def facts(e2e_engine, household: int):
    from api.models import Household

    with e2e_engine.connect() as conn:
        return conn.execute(
            select(Household.occupancy, Household.members, Household.tags).where(
                Household.id == household
            )
        ).one()


def patches(page) -> list[dict]:
    """Start recording every household PATCH the page sends (its path and body)."""
    sent: list[dict] = []

    def record(request):
        if "/api/v1/households/" in request.url and request.method == "PATCH":
            sent.append({"url": request.url, "body": request.post_data_json})

    page.on("request", record)
    return sent


def wait_for_empty_queue(page) -> None:
    """Until the list under the form is drawn with nothing queued (after the whole sync: the
    visits and the corrections after them)."""
    page.wait_for_function(
        """() => document.querySelector('#queue-count').textContent === '0'
                 && !document.querySelector('#queue li')"""
    )


def open_fold(page, household: int) -> None:
    page.select_option("#household", str(household))
    page.click("#register-fold > summary")
    page.wait_for_selector("#reg-occupancy", state="visible")


def cached(page, household: int) -> dict:
    return page.evaluate(
        """(id) => JSON.parse(localStorage.getItem('gridwork.households'))
                     .find((h) => h.id === id)""",
        household,
    )


def test_the_fold_shows_the_households_register_facts_as_last_read(context, page, owner_of_three):
    page = open_app(context, page)
    assert page.inner_text("#register-fold > summary") == "住户信息有变化？"
    open_fold(page, owner_of_three)
    assert page.locator("#reg-occupancy").input_value() == "owner"
    assert page.locator("#reg-occupancy option:checked").inner_text() == "自住"
    assert page.locator("#reg-members").input_value() == "3"
    assert page.locator("#register-fold input[name=reg_tags]").count() == 8
    assert page.locator("#register-fold input[name=reg_tags]:checked").count() == 0
    assert "独居" in page.inner_text("#register-fold")
    # The phone is the office's: not offered at the door.
    assert page.locator("#register-fold input[name*=phone]").count() == 0


def test_changed_tenure_members_and_tags_reach_the_household_after_sync(
    context, page, owner_of_three, e2e_engine
):
    page = open_app(context, page)
    sent = patches(page)
    open_fold(page, owner_of_three)
    page.select_option("#reg-occupancy", "tenant")
    page.fill("#reg-members", "1")
    page.check("#register-fold input[value=living_alone]")
    page.click("#record")
    page.wait_for_function("() => document.querySelector('#queue-count').textContent === '0'")
    page.wait_for_function(
        "() => document.querySelector('#visit-status').textContent.startsWith('已同步')"
    )
    page.wait_for_function(
        f"""() => JSON.parse(localStorage.getItem('gridwork.households'))
                   .find((h) => h.id === {owner_of_three})?.occupancy === 'tenant'"""
    )
    now = facts(e2e_engine, owner_of_three)
    assert (now.occupancy, now.members, list(now.tags)) == ("tenant", 1, ["living_alone"])
    assert [p["body"] for p in sent] == [
        {
            "occupancy": "tenant",
            "members": 1,
            "add_tags": ["living_alone"],
            "expected": {"occupancy": "owner", "members": 3},
        }
    ]
    assert queued_visits(page) == []
    kept = cached(page, owner_of_three)
    assert (kept["members"], kept["tags"]) == (1, ["living_alone"])


def test_a_tag_the_office_set_after_the_app_read_the_list_stays(
    context, page, owner_of_three, e2e_engine
):
    """The door sends the tags ticked and unticked, not the list it showed: the office's 低保,
    set meanwhile, is not taken off by a worker who never saw it."""
    from api.models import Household

    page = open_app(context, page)
    sent = patches(page)
    with e2e_engine.begin() as conn:
        conn.execute(
            update(Household).where(Household.id == owner_of_three).values(tags=["low_income"])
        )
    open_fold(page, owner_of_three)
    page.check("#register-fold input[value=living_alone]")
    page.click("#record")
    wait_for_empty_queue(page)
    page.wait_for_function(
        f"""() => JSON.parse(localStorage.getItem('gridwork.households'))
                   .find((h) => h.id === {owner_of_three})?.tags.length === 2"""
    )
    assert [p["body"] for p in sent] == [{"add_tags": ["living_alone"]}]
    assert list(facts(e2e_engine, owner_of_three).tags) == ["low_income", "living_alone"]


def test_only_the_fields_changed_are_sent(context, page, owner_of_three, e2e_engine):
    page = open_app(context, page)
    sent = patches(page)
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    open_fold(page, owner_of_three)
    page.fill("#reg-members", "4")
    page.click("#record")
    page.wait_for_function("() => document.querySelector('#queue-count').textContent === '1'")
    (record,) = queued_visits(page)
    assert record["register_changes"] == {"members": 4, "expected": {"members": 3}}
    context.set_offline(False)
    wait_for_empty_queue(page)
    now = facts(e2e_engine, owner_of_three)
    assert (now.occupancy, now.members, list(now.tags)) == ("owner", 4, [])
    assert [p["body"] for p in sent] == [{"members": 4, "expected": {"members": 3}}]


def test_a_correction_of_a_fact_the_office_changed_since_is_refused_and_said(
    context, page, owner_of_three, e2e_engine
):
    """Read at three members; the office sets five while the phone is offline; the worker's
    two went as a value and undid the office's five. Now the server refuses it (409, the
    facts as they are) and the app says what the register holds now."""
    from api.models import Household

    page = open_app(context, page)
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    open_fold(page, owner_of_three)
    page.fill("#reg-members", "2")
    page.click("#record")
    page.wait_for_function("() => document.querySelector('#queue-count').textContent === '1'")
    with e2e_engine.begin() as conn:
        conn.execute(update(Household).where(Household.id == owner_of_three).values(members=5))
    context.set_offline(False)
    page.wait_for_selector("#queue li.correction-refused")
    said = page.inner_text("#queue li.correction-refused")
    assert "登记信息在本机读取后已被修改" in said and "常住人数: 5" in said
    assert facts(e2e_engine, owner_of_three).members == 5


def test_members_for_a_household_left_vacant_are_refused_before_saving(
    context, page, owner_of_three, e2e_engine
):
    """The register refuses vacant with members (422): the app says so at the door, where the
    worker knows which of the two is wrong, rather than keep a correction the server refuses."""
    page = open_app(context, page)
    sent = patches(page)
    open_fold(page, owner_of_three)
    page.select_option("#reg-occupancy", "vacant")
    page.fill("#reg-members", "2")
    page.click("#record")
    page.wait_for_function(
        "() => document.querySelector('#visit-status').textContent.startsWith('空置的住户')"
    )
    assert "invalid" in page.locator("#reg-members").get_attribute("class")
    assert queued_visits(page) == [] and sent == []
    page.fill("#reg-members", "")  # left as it was read (3): vacant alone, and the register's 0
    page.click("#record")
    page.wait_for_function(
        f"""() => JSON.parse(localStorage.getItem('gridwork.households'))
                   .find((h) => h.id === {owner_of_three})?.occupancy === 'vacant'"""
    )
    assert [p["body"] for p in sent] == [
        {"occupancy": "vacant", "expected": {"occupancy": "owner"}}
    ]
    now = facts(e2e_engine, owner_of_three)
    assert (now.occupancy, now.members) == ("vacant", 0)


def test_nothing_is_sent_to_the_register_when_nothing_changed(
    context, page, owner_of_three, e2e_engine
):
    page = open_app(context, page)
    sent = patches(page)
    open_fold(page, owner_of_three)
    page.click("#record")
    page.wait_for_function(
        "() => document.querySelector('#visit-status').textContent.startsWith('已同步')"
    )
    assert sent == []
    now = facts(e2e_engine, owner_of_three)
    assert (now.occupancy, now.members, list(now.tags)) == ("owner", 3, [])


def test_a_correction_made_offline_goes_with_the_next_sync(
    context, page, owner_of_three, e2e_engine
):
    page = open_app(context, page)
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    open_fold(page, owner_of_three)
    page.select_option("#reg-occupancy", "vacant")
    page.fill("#reg-members", "0")
    page.click("#record")
    page.wait_for_function("() => document.querySelector('#queue-count').textContent === '1'")
    (record,) = queued_visits(page)
    assert record["state"] == "pending"
    assert record["register_changes"] == {
        "occupancy": "vacant",
        "members": 0,
        "expected": {"occupancy": "owner", "members": 3},
    }
    assert "register_changes" not in record["visit"]  # the visit goes as it always went
    assert facts(e2e_engine, owner_of_three).occupancy == "owner"  # nothing sent yet

    context.set_offline(False)
    page.wait_for_function("() => document.querySelector('#queue-count').textContent === '0'")
    page.wait_for_function(
        f"""() => JSON.parse(localStorage.getItem('gridwork.households'))
                   .find((h) => h.id === {owner_of_three})?.occupancy === 'vacant'"""
    )
    now = facts(e2e_engine, owner_of_three)
    assert (now.occupancy, now.members) == ("vacant", 0)
    assert queued_visits(page) == []


def correction_lost(page, household: int) -> None:
    """A visit to `household` found let to tenants, stored, its correction's PATCH lost on the
    way (it stays "correcting"); PATCHes are lost until the caller unroutes them."""
    page.route(
        "**/api/v1/households/*",
        lambda route: route.abort() if route.request.method == "PATCH" else route.continue_(),
    )
    open_fold(page, household)
    page.select_option("#reg-occupancy", "tenant")
    page.click("#record")
    page.wait_for_selector("#queue li.correcting")


def test_a_correction_that_got_no_answer_is_sent_at_the_next_sync(
    context, page, owner_of_three, e2e_engine
):
    """The visit stored, its correction lost on the way (a lift, a basement): the phone keeps
    the correction, not the visit, and sends it at the next sync."""
    page = open_app(context, page)
    correction_lost(page, owner_of_three)
    (record,) = queued_visits(page)
    assert record["register_changes"] == {"occupancy": "tenant", "expected": {"occupancy": "owner"}}
    assert page.locator("#queue-count").inner_text() == "0"  # the visit itself was stored
    assert facts(e2e_engine, owner_of_three).occupancy == "owner"

    page.unroute("**/api/v1/households/*")
    page.click("#sync")
    wait_for_empty_queue(page)
    assert facts(e2e_engine, owner_of_three).occupancy == "tenant"


def test_a_correction_the_server_put_off_is_tried_again_after_its_retry_after(
    context, page, owner_of_three, e2e_engine
):
    """The visit stored, the server restarting when its correction went (a 503 with
    Retry-After): the correction is tried again while the app stays open, as a visit is, not
    left for the next visit recorded or the app opened again."""
    answered: list[int] = []
    unavailable_once = unavailable_once_route(answered, "PATCH")

    page.add_init_script(NO_BACKGROUND_SYNC)
    page = open_app(context, page)
    page.route("**/api/v1/households/*", unavailable_once)
    open_fold(page, owner_of_three)
    page.select_option("#reg-occupancy", "tenant")
    page.click("#record")
    page.wait_for_selector("#queue li.correcting")  # the visit stored, its correction put off
    wait_for_empty_queue(page)  # no other sync asked for: the page's own, after Retry-After
    assert answered == [503, 200]
    assert facts(e2e_engine, owner_of_three).occupancy == "tenant"


def test_a_refused_correction_is_said_in_the_servers_words_and_not_sent_again(
    context, page, owner_of_three, e2e_engine
):
    """A correction the server refuses (here from an older or broken phone: more members than a
    household can have) is said beside the stored visit's household, not tried at every sync."""
    page = open_app(context, page)
    sent = patches(page)
    visit_id = queue_visit(page, owner_of_three)
    page.evaluate(
        """async (id) => {
          const queue = await import('/web/queue.js');
          const record = (await queue.listQueued()).find((r) => r.id === id);
          await queue.enqueue(record.visit, record.user, {members: 101});
        }""",
        visit_id,
    )
    page.click("#sync")
    item = page.locator(f"#queue li.correction-refused[data-id='{visit_id}']")
    item.wait_for()
    assert "住户信息更正未被接受" in item.inner_text()
    assert "less than or equal to 100" in item.locator(".server-reason").inner_text()
    assert facts(e2e_engine, owner_of_three).members == 3

    page.evaluate("async () => (await import('/web/queue.js')).syncQueue()")
    assert len(sent) == 1  # refused once, not sent again

    page.once("dialog", lambda dialog: dialog.accept())
    item.locator("button.discard").click()
    page.wait_for_function(f"() => !document.querySelector(\"#queue li[data-id='{visit_id}']\")")
    assert queued_visits(page) == []


def test_in_english_the_fold_speaks_english(context, page, owner_of_three):
    page = open_app(context, page)
    page.goto("/app?lang=en")
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#register-fold > summary") == "Household facts changed?"
    open_fold(page, owner_of_three)
    assert page.locator("#reg-occupancy option:checked").inner_text() == "Owner"
    assert "living alone" in page.inner_text("#register-fold")


def test_the_facts_go_with_the_session(context, page, owner_of_three):
    """Care tags (低保, 残疾) are residents' sensitive data: kept on the phone with the worker who
    read them, and dropped when their session ends."""
    page = open_app(context, page)
    assert cached(page, owner_of_three)["tags"] == []
    page.evaluate(
        "() => dispatchEvent(new CustomEvent('gridwork:session-ended', {detail: {why: 'expired'}}))"
    )
    page.wait_for_selector("#signin", state="visible")
    assert not {"tags", "occupancy", "members", "by"} & set(cached(page, owner_of_three))


def test_facts_another_user_read_are_not_shown(context, page, owner_of_three):
    """A phone shared by two workers: the facts the other one's app kept are not theirs to read."""
    page = open_app(context, page)
    page.evaluate(
        """(id) => {
          const list = JSON.parse(localStorage.getItem('gridwork.households'));
          Object.assign(list.find((h) => h.id === id),
                        {occupancy: 'tenant', members: 9, tags: ['disability'], by: '999999'});
          localStorage.setItem('gridwork.households', JSON.stringify(list));
        }""",
        owner_of_three,
    )
    other = page.evaluate(
        """(id) => [...document.querySelectorAll('#household option')]
                     .map((o) => o.value).find((v) => v && v !== String(id))""",
        owner_of_three,
    )
    page.select_option("#household", other)
    page.select_option("#household", str(owner_of_three))
    page.click("#register-fold > summary")
    assert "这户的登记信息尚未读取到本机" in page.inner_text("#register-fold")
    assert page.is_hidden("#register-fields")


def test_a_refused_visit_edited_where_the_facts_are_unknown_keeps_its_correction(
    context, page, owner_of_three
):
    """The visit refused (a follow-up without its note), its correction with it; the household's
    facts are not on the phone when it is edited (another user's copy): the fold offered
    nothing to change, and the correction went with the edit, dropped."""
    page = open_app(context, page)
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    visit_id = page.evaluate(
        """async (household) => {
          const queue = await import('/web/queue.js');
          const user = queue.tokenUser(localStorage.getItem('gridwork.token'));
          const id = crypto.randomUUID();
          await queue.enqueue({
            id, household_id: household, visited_at: new Date().toISOString(),
            location: {lon: 116.3975, lat: 39.9087, accuracy_m: 8, datum: 'wgs84'},
            outcome: 'met', notes: '', follow_up: true, follow_up_note: null,
          }, user, {members: 4});
          return id;
        }""",
        owner_of_three,
    )
    context.set_offline(False)
    page.wait_for_function("() => navigator.onLine")
    page.click("#sync")
    page.wait_for_selector(f"#queue li.rejected[data-id='{visit_id}']")
    page.evaluate(
        """(id) => {
          const list = JSON.parse(localStorage.getItem('gridwork.households'));
          list.find((h) => h.id === id).by = '999999';
          localStorage.setItem('gridwork.households', JSON.stringify(list));
        }""",
        owner_of_three,
    )
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    page.locator(f"#queue li.rejected[data-id='{visit_id}'] button.edit").click()
    page.wait_for_selector("#cancel-edit:not([hidden])")
    page.fill("#follow-up-note", "住户要求社区回电")
    page.click("#record")
    page.wait_for_function("() => document.querySelector('#cancel-edit').hidden")
    [record] = page.evaluate("async () => (await import('/web/queue.js')).listQueued()")
    assert record["register_changes"] == {"members": 4}


def test_the_office_s_newer_facts_read_meanwhile_are_not_undone(
    context, page, owner_of_three, e2e_engine
):
    """The fold filled at the door (three members), the list read again meanwhile with the
    office's change (five): the visit saved without touching the fold changes nothing. The
    three still on screen counted as a change against the five, and the correction set the
    household back to three."""
    from api.models import Household

    page = open_app(context, page)
    sent = patches(page)
    open_fold(page, owner_of_three)
    with e2e_engine.begin() as conn:
        conn.execute(update(Household).where(Household.id == owner_of_three).values(members=5))
    # The list read again meanwhile (after another household's correction was sent, say): the
    # phone's copy takes the office's five, the fold still shows the three it was filled with.
    page.evaluate(
        """(id) => {
          const list = JSON.parse(localStorage.getItem('gridwork.households'));
          list.find((h) => h.id === id).members = 5;
          localStorage.setItem('gridwork.households', JSON.stringify(list));
        }""",
        owner_of_three,
    )
    assert page.locator("#reg-members").input_value() == "3"
    page.click("#record")
    page.wait_for_function(
        "() => document.querySelector('#visit-status').textContent.startsWith('已同步')"
    )
    assert sent == []
    assert facts(e2e_engine, owner_of_three).members == 5


SWITCHED_OFF = (
    "UPDATE users SET active = :active,"
    " switched_off_at = CASE WHEN :active THEN NULL ELSE now() END WHERE username = 'worker01'"
)


@pytest.fixture()
def left_by_worker01(context, page, owner_of_three, e2e_engine):
    """worker01 records a visit to `owner_of_three`, found let to one living alone, that the
    server never gets, then leaves: signed out, their account switched off (on again after)."""
    from sqlalchemy import text

    page = open_app(context, page)
    context.route("**/api/v1/visits/batch", lambda route: route.abort())  # the server is away
    open_fold(page, owner_of_three)
    page.select_option("#reg-occupancy", "tenant")
    page.check("#register-fold input[value=living_alone]")
    page.click("#record")
    page.wait_for_function("() => document.querySelector('#queue-count').textContent === '1'")
    page.goto("/map")
    page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    context.unroute("**/api/v1/visits/batch")
    with e2e_engine.begin() as conn:
        conn.execute(text(SWITCHED_OFF), {"active": False})
    yield owner_of_three
    with e2e_engine.begin() as conn:
        conn.execute(text(SWITCHED_OFF), {"active": True})


def hand_over(context, page, username: str) -> None:
    """`username` signs in on the phone and sends what worker01 left on it."""
    open_app(context, page, username)
    page.wait_for_selector("#handover:not([hidden]) button[data-worker]")
    page.click("#handover button[data-worker]")
    page.wait_for_function("() => document.querySelector('#handover-result').textContent")


def test_a_switched_off_workers_correction_goes_with_the_visits_handed_over(
    context, page, left_by_worker01, e2e_engine
):
    """The admin, signed in on the phone, sends worker01's visits for them: the correction went
    nowhere (the handover sent the visits only, and dropped it with them)."""
    hand_over(context, page, "admin01")
    assert queued_visits(page) == []
    now = facts(e2e_engine, left_by_worker01)
    assert (now.occupancy, list(now.tags)) == ("tenant", ["living_alone"])


def test_a_correction_the_leader_may_not_make_is_left_for_the_admins_handover(
    context, page, left_by_worker01, e2e_engine
):
    """A leader hands over what they may: a correction of a household of a grid they do not
    lead (not found to them, a 404, as `test_matrix` holds a write out of scope) stays as it
    was, the worker's, for the admin's handover (kept as refused under the leader's name, the
    admin was never offered it)."""
    from sqlalchemy import text

    def forbidden(route):
        if route.request.method != "PATCH":
            return route.continue_()
        body = '{"title": "Not found", "status": 404, "detail": "Household 1 not found."}'
        return route.fulfill(status=404, content_type="application/problem+json", body=body)

    context.route("**/api/v1/households/*", forbidden)
    try:
        hand_over(context, page, "leader01")
        (record,) = queued_visits(page)
        assert record["state"] == "correcting"
        assert record["register_changes"] == {
            "occupancy": "tenant",
            "add_tags": ["living_alone"],
            "expected": {"occupancy": "owner"},
        }
        with e2e_engine.connect() as conn:
            worker01 = conn.scalar(text("SELECT id FROM users WHERE username = 'worker01'"))
        assert str(record["user"]) == str(worker01)
        page.wait_for_selector("#handover:not([hidden]) button[data-worker]")
        assert facts(e2e_engine, left_by_worker01).occupancy == "owner"
    finally:
        context.unroute("**/api/v1/households/*")


def test_the_correction_of_an_edit_another_version_overtook_still_goes(
    context, page, owner_of_three, e2e_engine
):
    """A refused visit edited, with a correction, while its automatic resend was stored: the
    edit stays "overtaken" to be read beside the stored version, and the correction, kept with
    it, was never sent nor shown. What the worker learnt at the door goes on its own."""
    page = open_app(context, page)
    state = page.evaluate(
        """async (household) => {
          const { requeueEdited } = await import('/web/queue.js');
          const { getToken, tokenUser } = await import('/web/session.js');
          const visit = { id: crypto.randomUUID(), household_id: household, outcome: 'met' };
          // Its record left the queue meanwhile: the resend stored the earlier version.
          const record = { id: visit.id, user: tokenUser(getToken()), visit, state: 'rejected' };
          return requeueEdited(record, visit, { occupancy: 'tenant' });
        }""",
        owner_of_three,
    )
    assert state == "overtaken"
    records = {r["state"]: r for r in queued_visits(page)}
    assert "register_changes" not in records["overtaken"]
    assert records["correcting"]["register_changes"] == {"occupancy": "tenant"}
    page.click("#sync")
    wait_for_empty_queue_but_the_edit = (
        "() => !document.querySelector('#queue li.correcting')"
        " && document.querySelector('#queue li.overtaken')"
    )
    page.wait_for_function(wait_for_empty_queue_but_the_edit)
    assert facts(e2e_engine, owner_of_three).occupancy == "tenant"


def test_an_active_workers_waiting_correction_is_not_handed_over(
    context, page, owner_of_three, e2e_engine
):
    """worker01's visit stored, its correction waiting (no answer), their session ended on the
    phone: still active, what they recorded is theirs to send. With no visit to hand over,
    nothing asked the server, and the admin's handover sent the correction as theirs."""
    page = open_app(context, page)
    correction_lost(page, owner_of_three)
    page.unroute("**/api/v1/households/*")
    page.goto("/map")
    page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    hand_over(context, page, "admin01")
    assert page.inner_text("#handover-result") == "该账号仍在使用：请由本人登录后发送。"
    (record,) = queued_visits(page)
    assert record["state"] == "correcting"
    assert facts(e2e_engine, owner_of_three).occupancy == "owner"
