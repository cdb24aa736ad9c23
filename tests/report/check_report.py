"""Open the study's Snakemake report in headless Chromium and check what a reader sees: every figure and table of
the study is listed in the report with a caption, the report's categories are the study's stages (each with its
Figures and Tables), and clicking through the menu shows every figure and table by name; a screenshot of one
stage's page is saved.

    python tests/report/check_report.py report.html --results results --screenshot docs/figures/report.png

Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver) and selenium:
`bash tests/report/run_report_check.sh` installs them and runs this on a study that has been run.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

STAGES = ("Grokking", "Robustness", "Sensitivity", "Representation similarity", "Capacity", "Adversarial training",
          "Robust vs standard representations", "Delayed robustness", "Claims")


def browser(width: int, height: int) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def click_text(driver, text: str) -> None:
    """Click the first visible element whose own text is `text` (a menu entry of the report)."""
    for element in driver.find_elements(By.XPATH, f"//*[normalize-space(text())={text!r}]"):
        if element.is_displayed():
            element.click()
            time.sleep(0.5)
            return
    raise AssertionError(f"no visible menu entry {text!r} in the report")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", type=Path)
    p.add_argument("--results", type=Path, required=True, help="the study's results/ directory")
    p.add_argument("--screenshot", type=Path, required=True)
    p.add_argument("--stage", default="Robust vs standard representations",
                   help="the stage of the figure opened for the screenshot")
    p.add_argument("--figure", default="representation_heatmaps.png", help="the figure opened for the screenshot")
    a = p.parse_args()

    expected = {f"results/figures/{f.parent.name}/{f.name}" for f in a.results.glob("figures/*/*.png")}
    expected |= {f"results/tables/{f.name}" for f in a.results.glob("tables/*.csv")}
    driver = browser(1600, 1000)
    try:
        driver.get(a.report.resolve().as_uri())
        time.sleep(3)
        categories = driver.execute_script("return categories")
        results = driver.execute_script("return results")
        print(f"report: {len(results)} results in {len(categories)} categories")
        assert set(categories) == set(STAGES), f"categories {sorted(categories)} are not the study's stages"
        listed = {path for stage in categories.values() for paths in stage.values() for path in paths}
        assert expected <= listed, f"not in the report: {sorted(expected - listed)}"
        for stage, subcategories in categories.items():
            assert set(subcategories) == {"Figures", "Tables"}, f"{stage}: {sorted(subcategories)}"
            print(f"  {stage}: {len(subcategories['Figures'])} figures, {len(subcategories['Tables'])} tables")
        uncaptioned = [path for path in listed if not results[path].get("caption", "").strip()]
        assert not uncaptioned, f"results without a caption: {uncaptioned}"
        # what a reader sees: each stage in the menu, each of its subcategories, every result listed by name
        for stage, subcategories in categories.items():
            for subcategory, paths in subcategories.items():
                driver.get(a.report.resolve().as_uri())
                time.sleep(1.5)
                click_text(driver, stage)
                click_text(driver, subcategory)
                page = driver.find_element(By.TAG_NAME, "body").text
                missing = [Path(path).name for path in paths if Path(path).name not in page]
                assert not missing, f"{stage} / {subcategory}: not shown {missing}"
        print("clicking through the menu shows every result under its stage")
        # one figure as a reader opens it: its caption (the info button), then the figure itself (the eye)
        path = next(p for p in categories[a.stage]["Figures"] if Path(p).name == a.figure)
        row = f"//tr[td[contains(., {a.figure!r})]]"

        def press(button: int) -> None:
            driver.get(a.report.resolve().as_uri())
            time.sleep(1.5)
            click_text(driver, a.stage)
            click_text(driver, "Figures")
            driver.find_element(By.XPATH, row).find_elements(By.TAG_NAME, "a")[button].click()
            time.sleep(2)

        press(1)
        caption = re.sub(r"<[^>]+>", "", results[path]["caption"]).split()
        page = " ".join(driver.find_element(By.TAG_NAME, "body").text.split())
        assert " ".join(caption[:8]) in page, f"the caption of {path} is not shown"
        press(0)
        a.screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(a.screenshot))
        print(f"the caption of {Path(path).name} is shown by its info button; the figure opened: {a.screenshot}")
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
