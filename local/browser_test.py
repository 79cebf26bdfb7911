"""The example site in a real browser (after local/up.sh, with local/.run/env in the environment:
local/test.sh does both): headless Chromium from Debian's packages, driven by selenium through
Debian's chromedriver. Nothing downloads a browser or a driver: selenium is given both paths, so
Selenium Manager is never run.

One user's whole lifecycle, through the pages only: sign-up -> confirm (the code the page shows
as local-only) -> sign-in -> pricing -> Checkout in the Stripe front -> success page -> account
shows pro and the key -> "Try the API" answers -> a metered price added: the account shows its
usage -> Billing Portal -> cancel -> account shows free -> delete the account. Each step also checks what the page claims against the emulators (the
key's value and usage plan in moto, the call counted, the Cognito user gone), and fails on any
error in the browser's console (a script error, a CSP violation, a failed request).

Prints `[ok] ...` or `[FAIL] ...` per step like local/demo.py and exits non-zero at the first
failure. Screenshots of each step: local/.run/screenshots/ (ignored). Skips, saying so, where
/usr/bin/chromium or /usr/bin/chromedriver is missing (local/install.sh installs them).

    local/.venv/bin/python local/browser_test.py
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import boto3

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LOCAL_DIR = Path(__file__).resolve().parent
SCREENSHOTS = LOCAL_DIR / ".run" / "screenshots"
# Page loads and in-page requests; a step that waits on the webhook uses TIMEOUT too.
TIMEOUT = float(os.environ.get("BROWSER_TEST_TIMEOUT", "90"))
PASSWORD = "Browser-Passw0rd!"
REGION = "us-east-1"


class Failed(Exception):
    """A check that did not hold; the message says what was expected and what was found."""


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        print(f"[FAIL] environment: {name} is not set: run local/up.sh, then "
              "`set -a; . local/.run/env; set +a` (local/test.sh does both)", flush=True)
        sys.exit(2)
    return value


def browser():
    # Imported here so that the skip above needs no selenium.
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="browser-test-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1280,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # chromedriver's log would hold what the test types and reads: the password, the key.
    service = Service(executable_path=CHROMEDRIVER, log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(TIMEOUT)
    return driver, profile


@dataclass
class Run:
    site: str = field(default_factory=lambda: env("SITE_ORIGIN").rstrip("/"))
    stripe_base: str = field(default_factory=lambda: env("STRIPE_API_BASE").rstrip("/"))
    stripe_key: str = field(default_factory=lambda: env("STRIPE_SECRET_KEY"))
    pool_id: str = field(default_factory=lambda: env("USER_POOL_ID"))
    plans: dict[str, str] = field(
        default_factory=lambda: dict(e.split("=", 1) for e in env("PLANS").split(",")))
    email: str = field(default_factory=lambda: f"browser-{secrets.token_hex(4)}@example.com")
    driver: Any = None
    facts: dict[str, Any] = field(default_factory=dict)
    shots: int = 0

    def __post_init__(self) -> None:
        creds = {"region_name": os.environ.get("AWS_REGION", REGION),
                 "aws_access_key_id": "local", "aws_secret_access_key": "local"}
        self.apigateway = boto3.client(
            "apigateway", endpoint_url=env("AWS_ENDPOINT_URL_API_GATEWAY"), **creds)
        self.cognito = boto3.client(
            "cognito-idp", endpoint_url=env("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"), **creds)

    # --- the page -----------------------------------------------------------------------------

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
        """Polls condition until it returns something truthy; fails with `what` and where the
        browser is."""
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except Exception as e:  # the page is still changing: an element not there yet
                last_error = e
            time.sleep(0.2)
        status = self.text("#status") if self.exists("#status") else ""
        raise Failed(f"{what}: not so after {timeout:.0f}s (at {self.driver.current_url}"
                     f"{', status: ' + repr(status) if status else ''}"
                     f"{', last error: ' + type(last_error).__name__ if last_error else ''})")

    def find(self, css: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def exists(self, css: str) -> bool:
        from selenium.webdriver.common.by import By
        return bool(self.driver.find_elements(By.CSS_SELECTOR, css))

    def visible(self, css: str):
        return self.wait(lambda: self.find(css) if self.find(css).is_displayed() else None,
                         f"{css} visible")

    def text(self, css: str) -> str:
        return self.find(css).text.strip()

    def button(self, label: str):
        """A button by its text, as a person finds it, else a link with that text (the header's
        "Sign in" link is not the sign-in form's button)."""
        from selenium.webdriver.common.by import By

        def usable(tag: str):
            xpath = f"//{tag}[normalize-space()={json.dumps(label)}]"
            return next((e for e in self.driver.find_elements(By.XPATH, xpath)
                         if e.is_displayed() and e.is_enabled()), None)

        return self.wait(lambda: usable("button") or usable("a"), f"a button {label!r}")

    def at(self, path_prefix: str, base: str | None = None) -> str:
        """Waits for the browser to be at a page whose path starts with path_prefix ("/": the
        home page itself)."""
        url = (base or self.site) + path_prefix

        def arrived() -> str | None:
            current = self.driver.current_url
            if path_prefix == "/":
                return current if current.split("?")[0].split("#")[0] == url else None
            return current if current.startswith(url) else None

        return self.wait(arrived, f"the browser at {url}")

    def type_into(self, css: str, value: str) -> None:
        element = self.visible(css)
        element.clear()
        element.send_keys(value)

    def screenshot(self, name: str) -> Path:
        """The whole page, not only the window (Chromium's DevTools protocol)."""
        self.shots += 1
        path = SCREENSHOTS / f"{self.shots:02d}-{name}.png"
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def console_errors(self) -> list[str]:
        """Errors in the console since the last call (a script error, a CSP violation, a
        failed request); the Stripe front's pages (no favicon) are not ours to check."""
        return [entry["message"] for entry in self.driver.get_log("browser")
                if entry.get("level") == "SEVERE"
                and self.stripe_base not in entry.get("message", "")]

    # --- the emulators --------------------------------------------------------------------------

    def key(self, key_id: str) -> dict:
        return self.apigateway.get_api_key(apiKey=key_id, includeValue=True)

    def stripe(self, method: str, path: str, params: dict[str, str] | None = None) -> dict:
        query = urllib.parse.urlencode(params or {})
        url = f"{self.stripe_base}{path}" + (f"?{query}" if method == "GET" and query else "")
        request = urllib.request.Request(
            url, method=method, data=query.encode() if method != "GET" else None,
            headers={"Authorization": f"Bearer {self.stripe_key}",
                     "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            raise Failed(f"Stripe {method} {path} answered {e.code}: "
                         f"{e.read().decode(errors='replace')[:300]}") from None

    def calls_counted(self, key_id: str) -> int:
        with urllib.request.urlopen(f"{env('AWS_ENDPOINT_URL_API_GATEWAY')}/_test/usage",
                                    timeout=10) as response:
            usage = json.load(response)["usage"]
        return sum(u["calls"] for u in usage if u["keyId"] == key_id)


# --- the steps ----------------------------------------------------------------------------------

def sign_up(r: Run) -> str:
    r.driver.get(f"{r.site}/signup")
    r.type_into("input[name=email]", r.email)
    r.type_into("input[name=password]", PASSWORD)
    r.button("Sign up").click()
    r.visible("#confirm-step")
    code = r.wait(lambda: r.text("#local-code-value"), "the local-only confirmation code shown")
    if "Local environment only" not in r.text("#local-code"):
        raise Failed(f"the code is not marked local-only: {r.text('#local-code')!r}")
    r.facts["code"] = code
    r.screenshot("sign-up-confirm")
    return f"signed up {r.email}; the page shows cognito-local's code, marked local-only"


def confirm(r: Run) -> str:
    r.type_into("input[name=code]", r.facts["code"])
    r.button("Confirm").click()
    r.at("/signin")
    r.wait(lambda: "confirmed" in r.text("#status"), "the sign-in page says the address is confirmed")
    email = r.find("input[name=email]").get_attribute("value")
    if email != r.email:
        raise Failed(f"the sign-in form holds {email!r}, expected {r.email}")
    r.screenshot("confirmed")
    return "ConfirmSignUp from the page: on to the sign-in page, e-mail filled in"


def sign_in(r: Run) -> str:
    r.type_into("input[name=password]", PASSWORD)
    r.button("Sign in").click()
    r.at("/account")
    plan = r.wait(lambda: r.text("#plan"), "the account page shows a plan")
    if plan != "free":
        raise Failed(f"a new account shows plan {plan!r}, expected free")
    # A free key from the first minute: made by GET /me, on the free plan's usage plan.
    r.wait(lambda: r.find("#key").is_displayed(), "the account page shows a free API key")
    key_id = r.text("#key-id")
    usage_plans = [p["id"] for p in r.apigateway.get_usage_plans(keyId=key_id)["items"]]
    if usage_plans != [r.plans["free"]] or r.text("#key-usage-plan") != r.plans["free"]:
        raise Failed(f"the new account's key {key_id} is on {usage_plans}, the page says "
                     f"{r.text('#key-usage-plan')!r}; expected the free usage plan {r.plans['free']}")
    r.facts["free_key_id"] = key_id
    if "billing-session" in r.driver.current_url or "token" in r.driver.current_url.lower():
        raise Failed(f"a token in the URL: {r.driver.current_url}")
    r.screenshot("account-free")
    return f"signed in: the account page shows plan free and a free API key {key_id} on {usage_plans[0]}"


def pricing(r: Run) -> str:
    r.find("header nav a[href='/pricing']").click()
    r.at("/pricing")
    cards = r.wait(lambda: r.driver.find_elements("css selector", "#plans article.plan"),
                   "plan cards on the pricing page")
    names = [c.find_element("css selector", "h2").text for c in cards]
    # The bootstrap's monthly Pro price (other tests may have put more prices on sale).
    pro_cards = [c for c in cards if c.get_attribute("data-lookup-key") == "pro_monthly"]
    if len(pro_cards) != 1 or pro_cards[0].find_element("css selector", "h2").text != "Pro":
        raise Failed(f"the pricing page shows {names}, expected one Pro card for pro_monthly")
    pro = pro_cards[0].text
    if "$10.00" not in pro:
        raise Failed(f"the Pro card reads {pro!r}, expected $10.00 a month")
    r.facts["pro_card"] = pro_cards[0]
    r.screenshot("pricing")
    return f"plans from GET /plans: {', '.join(names)}; Pro (pro_monthly) at $10.00 per month"


def checkout(r: Run) -> str:
    r.facts["pro_card"].find_element("xpath", ".//button[normalize-space()='Choose Pro']").click()
    r.at("/checkout/pay/", base=r.stripe_base)
    if "Pro" not in r.text("body"):
        raise Failed(f"the Stripe front's checkout page does not name Pro: {r.text('body')[:200]!r}")
    r.screenshot("stripe-checkout")
    return f"POST /checkout, then Stripe Checkout (the Stripe front) at {r.driver.current_url.split('?')[0]}"


def pay(r: Run) -> str:
    r.button("Pay with test card 4242").click()
    r.at("/billing/success")
    r.wait(lambda: "plan is active" in r.text("h1"), "the success page's heading")
    r.screenshot("success")
    return ("paid with the test card: Stripe's redirect -> GET /checkout/complete -> "
            "303 to /billing/success")


def account_pro(r: Run) -> str:
    r.button("Go to your account").click()
    r.at("/account")
    r.wait(lambda: r.text("#plan") == "pro", "the account page shows plan pro")
    r.wait(lambda: r.find("#key").is_displayed(), "the account page shows the API key")
    key_id = r.text("#key-id")
    if r.text("#key-value") != "hidden":
        raise Failed(f"the key's value is shown before it was asked for: {r.text('#key-value')!r}")
    r.screenshot("account-pro")
    r.button("Show key").click()
    shown = r.wait(lambda: r.text("#key-value") != "hidden" and r.text("#key-value"),
                   "the key's value shown on request")
    key = r.key(key_id)
    usage_plans = [p["id"] for p in r.apigateway.get_usage_plans(keyId=key_id)["items"]]
    if shown != key["value"] or usage_plans != [r.plans["pro"]]:
        raise Failed(f"key {key_id}: the page's value matches moto's: {shown == key['value']}; "
                     f"usage plans {usage_plans}, expected [{r.plans['pro']}] (pro)")
    if r.text("#key-usage-plan") != r.plans["pro"]:
        raise Failed(f"the page names usage plan {r.text('#key-usage-plan')!r}, expected {r.plans['pro']}")
    if key_id != r.facts["free_key_id"]:
        raise Failed(f"the upgrade made key {key_id}; expected the free key {r.facts['free_key_id']} moved")
    r.button("Hide key").click()
    r.facts["key_id"] = key_id
    status = r.text("#subscriptions tbody")
    if "active" not in status:
        raise Failed(f"the subscriptions table reads {status!r}, expected an active subscription")
    return (f"plan pro, subscription active, the free key {key_id} moved to the pro usage plan "
            f"{r.plans['pro']}, shown on request, equal to moto's")


def try_api(r: Run) -> str:
    key_id = r.facts["key_id"]
    before = r.calls_counted(key_id)
    r.button("Call the API").click()
    status = r.wait(lambda: r.find("#try-status").is_displayed() and r.text("#try-status"),
                    "the API's answer shown")
    answer = r.text("#try-answer")
    quota = r.text("#try-quota")
    if status != "HTTP 200" or "hello from the product API" not in answer:
        raise Failed(f"Try the API shows {status!r} {answer!r}")
    quota_plan = r.apigateway.get_usage_plan(usagePlanId=r.plans["pro"])["quota"]
    expected = f"{quota_plan['limit'] - before - 1:,} of {quota_plan['limit']:,} calls left this month."
    if quota != expected:
        raise Failed(f"the remaining quota reads {quota!r}, expected {expected!r}")
    after = r.calls_counted(key_id)
    if after != before + 1:
        raise Failed(f"moto counted {after} calls on key {key_id}, expected {before + 1}")
    r.screenshot("try-the-api")
    return f"GET /hello with the key: HTTP 200, {quota!r}; moto counted the call ({after} in all)"


def metered_usage(r: Run) -> str:
    """Usage billing added to the plan as a seller adds it (a Billing Meter, a metered price on
    the pro product, that price added to the subscription): the account page shows this
    period's calls on the key, none sent to Stripe yet (no usage report has run)."""
    user = r.cognito.admin_get_user(UserPoolId=r.pool_id, Username=r.email)
    customer = {a["Name"]: a["Value"] for a in user["UserAttributes"]}["custom:stripe_customer_id"]
    subscription = r.stripe("GET", "/v1/subscriptions", {"customer": customer})["data"][0]
    meter = r.stripe("POST", "/v1/billing/meters", {
        "display_name": "API calls", "event_name": f"site_calls_{secrets.token_hex(4)}",
        "default_aggregation[formula]": "sum"})
    price = r.stripe("POST", "/v1/prices", {
        "product": subscription["items"]["data"][0]["price"]["product"], "currency": "usd",
        "unit_amount": "1", "recurring[interval]": "month", "recurring[usage_type]": "metered",
        "recurring[meter]": meter["id"]})
    r.stripe("POST", "/v1/subscription_items", {"subscription": subscription["id"],
                                                "price": price["id"]})
    calls = r.calls_counted(r.facts["key_id"])

    def usage_row() -> list[str] | None:
        r.driver.refresh()  # the webhook stores the new item a moment later
        r.wait(lambda: r.text("#plan"), "the account page shows a plan", timeout=15)
        if not r.find("#usage").is_displayed():
            return None
        from selenium.webdriver.common.by import By
        return [cell.text for cell in r.find("#usage tbody tr").find_elements(By.TAG_NAME, "td")]

    cells = r.wait(usage_row, "the account page shows the metered price's usage")
    if cells[0] != price["id"] or cells[2:] != ["0", str(calls), str(calls)]:
        raise Failed(f"the usage row reads {cells}, expected {price['id']}, 0 sent, {calls} not "
                     "sent yet")
    r.screenshot("account-usage")
    return (f"metered price {price['id']} added to {subscription['id']}: the account shows "
            f"{calls} call(s) this period, not sent to Stripe yet")


def portal_cancel(r: Run) -> str:
    r.button("Manage billing").click()
    r.at("/portal/", base=r.stripe_base)
    r.wait(lambda: "active" in r.text("body"), "the portal lists the active subscription")
    r.screenshot("billing-portal")
    r.button("Cancel now").click()
    # A canceled subscription leaves the portal's list (Stripe lists the others by default).
    r.wait(lambda: "active" not in r.text("ul"), "the portal lists no active subscription")
    r.screenshot("billing-portal-canceled")
    r.button("Return").click()
    r.at("/account")
    return "POST /portal, the Billing Portal (Stripe front): cancelled now, Return to /account"


def account_free(r: Run) -> str:
    def free() -> bool:
        r.driver.refresh()
        return r.wait(lambda: r.text("#plan"), "the account page shows a plan", timeout=15) == "free"

    # The webhook applies the cancellation a moment after the portal's redirect.
    r.wait(free, "the account page shows plan free after the webhook")
    subscriptions = r.text("#subscriptions tbody")
    if "canceled" not in subscriptions:
        raise Failed(f"the subscriptions table reads {subscriptions!r}, expected canceled")
    def usage_plans() -> list[str]:
        return [p["id"] for p in r.apigateway.get_usage_plans(keyId=r.facts["key_id"])["items"]]

    # The webhook stores the subscription, then moves the key.
    r.wait(lambda: usage_plans() == [r.plans["free"]],
           f"key {r.facts['key_id']} on the free usage plan {r.plans['free']} only")
    r.screenshot("account-free-again")
    return f"plan free, subscription canceled, key moved to the free usage plan {r.plans['free']}"


def rotate_key(r: Run) -> str:
    old_id = r.facts["key_id"]
    r.button("Rotate key").click()
    r.wait(lambda: "New API key made" in r.text("#status"), "the page says a new key was made")
    new_id = r.text("#key-id")
    shown = r.text("#key-value")
    if new_id == old_id:
        raise Failed(f"the page still shows key {old_id} after the rotation")
    new_key, old_key = r.key(new_id), r.apigateway.get_api_key(apiKey=old_id)
    usage_plans = [p["id"] for p in r.apigateway.get_usage_plans(keyId=new_id)["items"]]
    if shown != new_key["value"] or usage_plans != [r.plans["free"]] or not new_key["enabled"]:
        raise Failed(f"new key {new_id}: the page's value matches moto's: {shown == new_key['value']}; "
                     f"usage plans {usage_plans}, enabled {new_key['enabled']}")
    if old_key["enabled"] or not old_key["name"].startswith("billing-retired-"):
        raise Failed(f"the old key {old_id} is {old_key['name']!r}, enabled {old_key['enabled']}: "
                     "expected retired and disabled")
    r.facts["key_id"] = new_id
    r.screenshot("account-rotated")
    return (f"POST /me/api-key/rotate: new key {new_id} on {usage_plans[0]}, value shown; "
            f"the old key {old_id} retired and disabled")


def delete_account(r: Run) -> str:
    r.button("Delete my account").click()
    r.wait(lambda: r.find("#confirm-delete").is_displayed(), "the confirmation dialog")
    r.screenshot("delete-confirm")
    r.button("Delete it").click()
    r.at("/")
    r.wait(lambda: "account is deleted" in r.text("#flash"), "the home page says the account is deleted")
    if r.driver.execute_script("return sessionStorage.getItem('billing-session')") is not None:
        raise Failed("the session is still in sessionStorage after the deletion")
    try:
        r.cognito.admin_get_user(UserPoolId=r.pool_id, Username=r.email)
    except r.cognito.exceptions.UserNotFoundException:
        pass
    else:
        raise Failed(f"Cognito still has {r.email} after DELETE /me")
    r.screenshot("deleted")
    return "DELETE /me after the dialog: signed out, the Cognito user is gone"


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[Run], str]


STEPS = [
    Step("sign up", sign_up),
    Step("confirm", confirm),
    Step("sign in", sign_in),
    Step("pricing", pricing),
    Step("checkout", checkout),
    Step("pay, success page", pay),
    Step("account: pro and the API key", account_pro),
    Step("try the API", try_api),
    Step("usage on a metered price", metered_usage),
    Step("billing portal: cancel", portal_cancel),
    Step("account: free again", account_free),
    Step("rotate the API key", rotate_key),
    Step("delete the account", delete_account),
]

HINT = ("see local/.run/logs/site.log (the dev server), lambda.log (the functions), "
        "stripe-front.log, and the screenshots in local/.run/screenshots/")


def main() -> int:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        print(f"browser test: SKIPPED: {' and '.join(missing)} missing (Debian's chromium and "
              "chromium-driver; local/install.sh installs them with apt-get when it can: see "
              "local/.run/logs/apt-chromium.log)", flush=True)
        return 0
    run = Run()
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    run.driver, profile = browser()
    print(f"browser test: {run.driver.capabilities.get('browserVersion')} headless, site "
          f"{run.site}, user {run.email}", flush=True)
    try:
        for number, step in enumerate(STEPS, 1):
            try:
                detail = step.run(run)
                errors = run.console_errors()
                if errors:
                    raise Failed("the browser's console has errors: " + " | ".join(errors))
            except Exception as e:
                reason = str(e) if isinstance(e, Failed) else f"{type(e).__name__}: {e}"
                shot = run.screenshot(f"FAILED-{step.title.replace(' ', '-').replace(':', '')}")
                print(f"[FAIL] {number}. {step.title}: {reason}", flush=True)
                print(f"       screenshot {shot.relative_to(LOCAL_DIR.parent)}; {HINT}", flush=True)
                return 1
            print(f"[ok] {number}. {step.title}: {detail}", flush=True)
    finally:
        run.driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    print(f"browser test: all {len(STEPS)} steps passed; screenshots in "
          f"{SCREENSHOTS.relative_to(LOCAL_DIR.parent)}/", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
