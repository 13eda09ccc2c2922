"""The pages work under their Content-Security-Policy: scripts and styles
from this origin only, no inline script, never framed."""

import pytest

from tests.e2e.conftest import open_room, say, shown, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_app_works_under_a_strict_policy_and_an_injected_script_is_refused(
    browser, server, users
):
    alice = await sign_in(browser, server, "alice", bypass_csp=False)
    violations = []
    alice.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    response = await alice.goto(f"{server.http_url}/")
    policy = response.headers["content-security-policy"]
    for part in ("script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"):
        assert part in policy, policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    await alice.wait_for_selector("#app[data-ready]")
    await open_room(alice, "lobby")
    await say(alice, "works under the policy")
    await shown(alice, "works under the policy").wait_for()
    assert violations == [] and alice.errors == []

    # An inline script, had one got into the page, does not run.
    ran = await alice.evaluate(
        """() => new Promise((done) => {
            const seen = () => done(window.injected === true);
            window.addEventListener("securitypolicyviolation", seen);
            const s = document.createElement("script");
            s.textContent = "window.injected = true";
            document.body.append(s);
        })"""
    )
    assert ran is False
    violations.clear()
    for path in ("/accounts/login/", "/settings/", "/admin/login/", "/api/v1/docs"):
        page = await alice.context.new_page()
        page.on("console", lambda m: "Content Security" in m.text and violations.append(m.text))
        seen = await page.goto(f"{server.http_url}{path}")
        await page.wait_for_load_state("networkidle")
        assert seen.headers["content-security-policy"] == policy, path
        await page.close()
    assert violations == []


async def test_graphiql_runs_under_the_policy_with_its_files_from_here(browser, server, users):
    alice = await sign_in(browser, server, "alice", bypass_csp=False)
    violations, outside = [], []
    alice.on("console", lambda m: "Content Security" in m.text and violations.append(m.text))
    alice.on(
        "request",
        lambda r: (
            not r.url.startswith(server.http_url)
            and not r.url.startswith("data:")
            and outside.append(r.url)
        ),
    )
    await alice.goto(f"{server.http_url}/graphql/")
    await alice.wait_for_selector(".graphiql-container")
    await alice.click(".graphiql-execute-button")
    result = alice.locator(".result-window")
    await result.get_by_text('"lobby"').first.wait_for()
    assert violations == [] and outside == [] and alice.errors == []
