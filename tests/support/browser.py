"""Browser tests drive Debian's chromium through Playwright (never a downloaded browser)."""

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium tries to reach Google's hosts at start.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]
PASSWORD = "pw-123456"  # tests.factories.UserFactory's password

assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"


def launch(playwright):
    """A headless chromium browser from ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def log_in(page, base_url: str, username: str = "alice", next_url: str = "/") -> None:
    """Log in through the login form and wait for the redirect to ``next_url``."""
    page.goto(f"{base_url}/accounts/login/?next={next_url}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}{next_url}")
