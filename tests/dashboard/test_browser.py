"""In a real browser: the dashboard served by `optuna-nachos dashboard`, and the HTML report.

Headless Chromium through selenium and chromedriver; skipped when one of them is missing.
Screenshots go to the test's tmp folder and are copied to SCREENSHOTS for people to look at.
"""

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from optuna_nachos.study import is_feasible
from optuna_nachos.visualization import study_figures

pytestmark = pytest.mark.slow

SCREENSHOTS = Path("/tmp/nachos_screens")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--window-size=1600,2200",
)
# The machine may be busy: waits are generous, and polling ends as soon as the page is ready.
TIMEOUT = 600.0


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    binary = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip(
            "Chromium and chromedriver are needed (Debian: apt-get install chromium "
            "chromium-driver)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.page_load_strategy = "none"  # poll for the content instead of one long wait
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_script_timeout(30)  # chromedriver answers before its client gives up
    try:
        yield driver
    finally:
        driver.quit()


def _wait(condition, what: str, timeout: float = TIMEOUT):
    from selenium.common.exceptions import TimeoutException
    from urllib3.exceptions import ReadTimeoutError

    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except (TimeoutException, ReadTimeoutError):  # the page is busy running its scripts
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def _plots(driver) -> list[dict]:
    """Every plotly graph of the page: its title and its traces (name, hover template)."""
    return driver.execute_script(
        """
        return Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => ({
            title: (g.layout && g.layout.title && (g.layout.title.text || g.layout.title)) || '',
            traces: (g.data || []).map(t => ({
                name: t.name || '', hover: t.hovertemplate || '', n: (t.x || []).length
            }))
        }));
        """
    )


def _screenshot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    # The whole page: grow the window to the document's height (headless allows it).
    height = _wait(
        lambda: driver.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight, "
            "...Array.from(document.querySelectorAll('main, [class*=MuiBox]'))"
            ".map(e => e.scrollHeight))"
        ),
        "the page's height",
    )
    driver.set_window_size(1600, min(max(int(height) + 100, 1200), 8000))
    time.sleep(1.0)
    assert driver.save_screenshot(str(path))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENSHOTS / name)
    return path


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html).strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served_dashboard(digits_study, tmp_path):
    """`optuna-nachos dashboard` on a copy of the digits study, in a subprocess."""
    url = f"sqlite:///{tmp_path / 'copy.db'}"
    optuna.copy_study(
        from_study_name=digits_study.study.study_name,
        from_storage=digits_study.storage,
        to_storage=url,
    )
    port = _free_port()
    log = (tmp_path / "dashboard.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "optuna_nachos.cli",
            "dashboard",
            "--storage",
            url,
            "--port",
            str(port),
            "--artifacts",
            str(digits_study.artifact_dir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"the dashboard command exited: {(tmp_path / 'dashboard.log').read_text()}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5):
                return True
        except OSError:
            return False

    try:
        _wait(up, "the dashboard to serve")
        study = optuna.load_study(study_name=digits_study.study.study_name, storage=url)
        yield study, f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


def test_the_dashboard_shows_the_figures_and_the_infeasible_trials(
    browser, served_dashboard, tmp_path
):
    study, base = served_dashboard
    figures = study_figures(study)
    pareto_title = _text(figures["pareto_front"].layout.title.text)
    browser.get(f"{base}/dashboard/studies/{study._study_id}")

    def ready():
        plots = _plots(browser)
        titles = [_text(str(p["title"])) for p in plots]
        found = pareto_title in titles and len(plots) > len(figures)
        return plots if found else None

    plots = _wait(ready, "the attached figures on the study page")
    titles = {_text(str(p["title"])) for p in plots}
    for name, figure in figures.items():
        if figure.layout.title.text:
            assert _text(figure.layout.title.text) in titles, name
    shot = _screenshot(browser, tmp_path, "dashboard_study.png")
    assert shot.stat().st_size > 10_000

    # The dashboard's own plots (not ours) separate feasible and infeasible trials, as the
    # constraints say: with the plain optuna-dashboard they would all be feasible.
    n_infeasible = sum(
        1
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        if not is_feasible(t)
    )
    assert n_infeasible > 0
    ours = {_text(f.layout.title.text or "") for f in figures.values()}
    native = [p for p in plots if _text(str(p["title"])) not in ours]
    infeasible_traces = [
        trace
        for plot in native
        for trace in plot["traces"]
        if "infeasible" in f"{trace['name']} {trace['hover']}".lower()
    ]
    assert infeasible_traces, json.dumps(native)[:2000]
    assert max(trace["n"] for trace in infeasible_traces) == n_infeasible


def test_the_html_report_opens_offline_with_every_figure(browser, digits_study, tmp_path):
    from optuna_nachos.report import write_report

    study = digits_study.study
    figures = study_figures(study)
    path = write_report(study, tmp_path / "report.html")
    browser.get(path.as_uri())

    def ready():
        plots = _plots(browser)
        return plots if len(plots) == len(figures) else None

    plots = _wait(ready, "every figure of the report")
    titles = {_text(str(p["title"])) for p in plots}
    assert _text(figures["pareto_front"].layout.title.text) in titles
    assert all(p["traces"] for p in plots if p["title"]), "the figures hold their data"
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert not [name for name in fetched if not name.startswith(("file:", "data:", "blob:"))]
    shot = _screenshot(browser, tmp_path, "report.png")
    assert shot.stat().st_size > 10_000
