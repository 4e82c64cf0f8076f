"""The office pages (/window, /reports, /rosters, /register, /audit) boot alike (`bootPage` in
web/src/password.js): the sign-in form's language link, the page once signed in, 退出 ending the
session on the server and showing the form again, a session ended elsewhere sending the page
back to the form."""

from __future__ import annotations

import pytest

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import sign_in
from tests.e2e.test_app import status_of

PAGES = ["/window", "/reports", "/rosters", "/register", "/audit"]


@pytest.mark.parametrize("path", PAGES)
def test_an_office_page_signs_in_in_either_language_and_out_again(page, live_server, path):
    page.goto(path)
    page.wait_for_selector("#signin:not([hidden])")
    assert page.inner_text("#signin-lang") == "English"
    page.click("#signin-lang")
    page.wait_for_selector("#signin:not([hidden])")
    assert "lang=en" in page.url and page.inner_text("#signin-lang") == "中文"
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    assert page.is_hidden("#signin")
    token = page.evaluate("() => localStorage.getItem('gridwork.token')")
    assert status_of(live_server, token) == 200
    with page.expect_navigation():
        page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("() => localStorage.getItem('gridwork.token')") is None
    assert status_of(live_server, token) == 401


@pytest.mark.parametrize("path", PAGES)
def test_an_office_page_whose_session_ended_elsewhere_shows_the_sign_in_form(page, path):
    page.goto(path)
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    ended = """() => { localStorage.clear();
                       dispatchEvent(new Event('gridwork:session-ended')); }"""
    if path == "/window":  # not reloaded: the request being typed is kept (test_window.py)
        page.evaluate(ended)
        page.wait_for_selector("#main", state="hidden")
    else:
        with page.expect_navigation():
            page.evaluate(ended)
    page.wait_for_selector("#signin:not([hidden])")


@pytest.mark.parametrize("path", [*PAGES, "/app", "/map", "/accounts"])
def test_the_password_typed_is_not_left_in_the_sign_in_form_once_signed_in(page, path):
    """The form stays in the page, hidden: with the password in it, a sign-in ended later (a
    reset by the office) showed the form filled in, and 登录 sent the old password."""
    page.goto(path)
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("#signin[hidden]", state="attached")
    page.wait_for_function(
        "() => document.querySelector('#signin input[name=password]').value === ''"
    )
