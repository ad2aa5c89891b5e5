"""Signing in and out, registering, and what the UI does when a session expires or a screen is narrow."""

from __future__ import annotations

import secrets
from typing import Any

from playwright.sync_api import expect


def test_register_then_land_in_the_chat(page: Any, servers: Any, shot: Any) -> None:
    page.goto(servers.frontend)
    expect(page.locator("#auth-view")).to_be_visible()
    shot("01-sign-in")
    page.click("#tab-register")
    expect(page.locator("#auth-hint")).to_be_visible()
    page.fill("#auth-username", f"newuser{secrets.token_hex(3)}")
    page.fill("#auth-password", "a-long-password")
    page.click("#auth-submit")
    expect(page.locator("#app-view")).to_be_visible()
    expect(page.locator("#empty-state")).to_be_visible()
    expect(page.locator("#conversations")).to_contain_text("No conversations yet")
    shot("02-after-register")
    assert page.errors == []


def test_wrong_password_is_refused_with_a_message(page: Any, servers: Any, user: Any) -> None:
    page.goto(servers.frontend)
    page.fill("#auth-username", user.username)
    page.fill("#auth-password", "not-the-password")
    page.click("#auth-submit")
    expect(page.locator("#auth-error")).to_have_text("Wrong username or password.")
    expect(page.locator("#app-view")).to_be_hidden()


def test_health_badge_names_the_provider(signed_in: Any) -> None:
    expect(signed_in.locator("#health")).to_have_text("fake")


def test_reload_keeps_the_session(signed_in: Any, user: Any) -> None:
    signed_in.reload()
    expect(signed_in.locator("#app-view")).to_be_visible()
    expect(signed_in.locator("#whoami")).to_have_text(user.username)


def test_expired_access_token_is_renewed_with_the_refresh_token(signed_in: Any, user: Any) -> None:
    signed_in.evaluate(
        """() => {
          const key = "analysis-server.session";
          const s = JSON.parse(localStorage.getItem(key));
          s.access_token = "expired.or.forged";
          localStorage.setItem(key, JSON.stringify(s));
        }"""
    )
    signed_in.reload()
    expect(signed_in.locator("#app-view")).to_be_visible()
    expect(signed_in.locator("#whoami")).to_have_text(user.username)


def test_session_that_cannot_be_renewed_returns_to_sign_in(signed_in: Any, shot: Any) -> None:
    signed_in.evaluate(
        """() => localStorage.setItem("analysis-server.session",
             JSON.stringify({access_token: "bad", refresh_token: "bad", username: "x"}))"""
    )
    signed_in.reload()
    expect(signed_in.locator("#auth-view")).to_be_visible()
    expect(signed_in.locator("#auth-error")).to_contain_text("session has expired")
    shot("03-session-expired")


def test_sign_out_clears_the_session(signed_in: Any) -> None:
    signed_in.click("#logout")
    expect(signed_in.locator("#auth-view")).to_be_visible()
    signed_in.reload()
    expect(signed_in.locator("#auth-view")).to_be_visible()


def test_narrow_screen_hides_the_sidebar_behind_a_menu_button(signed_in: Any, shot: Any) -> None:
    signed_in.set_viewport_size({"width": 390, "height": 844})
    signed_in.reload()  # as a phone opens it: laid out narrow from the start
    expect(signed_in.locator("#app-view")).to_be_visible()
    sidebar = signed_in.locator("#sidebar")
    expect(signed_in.locator("#sidebar-toggle")).to_be_visible()
    assert sidebar.bounding_box()["x"] < 0  # slid out of view
    composer = signed_in.locator("#composer").bounding_box()
    assert composer["x"] >= 0 and composer["x"] + composer["width"] <= 390
    shot("04-narrow")
    signed_in.click("#sidebar-toggle")
    expect(signed_in.locator("#new-chat")).to_be_in_viewport()
    signed_in.wait_for_timeout(300)  # slide-in transition
    shot("05-narrow-sidebar-open")
    signed_in.click("#sidebar-backdrop", position={"x": 370, "y": 400})
    expect(signed_in.locator("#sidebar-backdrop")).to_be_hidden()
