"""`snakemake --report report.html` holds every figure with its caption, the tables, the fits and
the run configs, and its figures render in a real browser (headless Chromium, no mock).

Snakemake's report (8 and 9) is one self-contained HTML page: every result is embedded as a data URI
in a JavaScript object (`var results = {...}`) and a React app draws the page from it, so the page's
raw HTML holds every name before any script ran. The checks therefore look at the DOM *after* the
app ran (Chromium's --dump-dom with a virtual-time budget), only inside the app's root element, and
at a screenshot. The browser is driven through the report's own UI: a script appended to a copy of
the page clicks the "Figures" category, then each figure's view button, as a reader would, and
writes what the browser made of each image (decoded size) into the page.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from workspace import sh

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
# the figures a preset without scan runs shows (the smoke preset: no depth or width scan, no lr
# sweep; an IsoFLOP grid)
FIGURES = ["upstream_vs_flops", "pareto", "scaling_per_arch", "downstream_scaling", "lc_frontier", "learning_curves",
           "fit_residuals", "prediction_check", "isoflop"]
SHOWN_LAST = "figures/lc_frontier.png"  # the figure on screen when the screenshot is taken


def results_of(html: str) -> tuple[dict, dict]:
    """The report's embedded `results` (path -> entry) and `categories` (category -> sub -> paths)."""
    found = {}
    for name in ("results", "categories"):
        m = re.search(rf'<script id="{name}">\s*var {name} = (.*?);\s*</script>', html, re.S)
        assert m, f"no `var {name}` in the report: not Snakemake's HTML report?"
        found[name] = json.loads(m.group(1))
    return found["results"], found["categories"]


# Appended to a copy of the report: clicks through the app as a reader would, then records, for
# every figure, whether the browser listed it and decoded its image, in <pre id="archscale-check">.
DRIVER = """
<script>
(function () {
  var figures = __FIGURES__;
  var out = {listed: [], images: {}, errors: [], shown: null};
  window.addEventListener("error", function (e) { out.errors.push(String(e.message)); });
  function save() {
    var pre = document.getElementById("archscale-check");
    if (!pre) {
      pre = document.createElement("pre");
      pre.id = "archscale-check";
      pre.style.display = "none";
      document.body.appendChild(pre);
    }
    pre.textContent = JSON.stringify(out);
  }
  function byText(selector, text) {
    return Array.prototype.find.call(document.querySelectorAll(selector), function (el) {
      return el.textContent.trim() === text;
    });
  }
  var tries = 0;
  function openFigures() {
    var item = byText("#app li", "Figures");
    if (!item) {
      if (tries++ < 100) { return setTimeout(openFigures, 50); }
      out.errors.push("no 'Figures' item in the report's menu");
      return save();
    }
    (item.querySelector("a") || item).click();
    setTimeout(function () { show(0, 0); }, 100);
  }
  function show(i, waited) {
    if (i >= figures.length) {
      out.listing = Array.prototype.map.call(document.querySelectorAll("#app td"), function (td) {
        return td.textContent.trim();
      });
      return info(figures[figures.length - 1]);
    }
    var path = figures[i];
    var cell = byText("#app td", path);
    if (!cell) {
      if (waited < 40) { return setTimeout(function () { show(i, waited + 1); }, 50); }
      out.images[path] = {error: "not listed under Figures"};
      return show(i + 1, 0);
    }
    out.listed.push(path);
    cell.parentElement.querySelector("a").click();  // the row's first button: view
    look(path, i, 0);
  }
  function look(path, i, waited) {
    var img = Array.prototype.find.call(document.querySelectorAll("#app img"), function (el) {
      return el.getAttribute("src") === results[path].data_uri;
    });
    if (!img || !img.complete || !img.naturalWidth) {
      if (waited < 100) { return setTimeout(function () { look(path, i, waited + 1); }, 50); }
      out.images[path] = {error: img ? "image not decoded" : "image not shown"};
      return show(i + 1, 0);
    }
    var r = img.getBoundingClientRect();
    out.images[path] = {width: img.naturalWidth, height: img.naturalHeight,
                        box: [r.left, r.top, r.width, r.height]};
    out.shown = path;
    save();
    show(i + 1, 0);
  }
  function info(path) {  // the last figure's info button: the menu shows its caption beside it
    var cell = byText("#app td", path);
    if (cell) {
      var buttons = cell.parentElement.querySelectorAll("a");
      buttons[buttons.length - 1].click();
      out.info = path;
    }
    setTimeout(save, 100);
  }
  setTimeout(openFigures, 50);
})();
</script>
"""


def chromium(*args: str, profile: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    """Headless Chromium with a fresh profile and nothing that reaches the network."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}", "--window-size=1400,2000",
           "--virtual-time-budget=15000", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def report(smoke_build, tmp_path_factory) -> tuple[Path, Path]:
    """report.html of the smoke build (one self-contained page; a .zip is needed only for directories)."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    sh(smoke_build, "snakemake", "--report", str(out), timeout=600)
    return smoke_build, out


@pytest.mark.slow
def test_report_holds_figures_tables_fits_and_run_configs(report):
    ws, path = report
    results, categories = results_of(path.read_text(encoding="utf-8"))
    assert {"Figures", "Tables", "Fits", "Runs"} <= set(categories), sorted(categories)
    # every figure this preset has runs for, with its caption (the paper's, as rst in workflow/report/)
    for name in FIGURES:
        entry = results.get(f"figures/{name}.png")
        assert entry, f"figure {name} not in the report"
        assert entry["mime_type"] == "image/png" and entry["data_uri"].startswith("data:image/png")
        caption = (REPO / "workflow" / "report" / "figures" / f"{name}.rst").read_text()
        first_words = re.sub(r"[*`]", "", caption).split()[:4]
        assert " ".join(first_words) in re.sub(r"<[^>]+>", "", entry["caption"]).replace("\n", " "), name
    # no scan runs in the smoke preset: the scan figures (drawn as placeholders) are left out
    assert not [p for p in results if "scan" in p], [p for p in results if "scan" in p]
    assert "figures/lr_sweep.png" not in results, "no lr sweep in the smoke preset: its figure is left out"
    figures = {p for p in categories["Figures"][next(iter(categories["Figures"]))]}
    assert figures == {f"figures/{n}.png" for n in FIGURES}
    # tables: the CSV files (readable) and the generated LaTeX
    for table in ("results/summary.csv", "results/throughput.csv", "paper/generated/table1_runs.tex",
                  "paper/generated/macros.tex", "paper/generated/table3_transfer.tex", "paper/generated/isoflop.tex"):
        assert table in results and results[table]["caption"].strip(), table
    # every fit and every run's resolved config, one subcategory per architecture
    fits = sorted(p.name for p in (ws / "results" / "fits").glob("*.json"))
    assert fits and all(f"results/fits/{f}" in results for f in fits), fits
    runs = sorted(p.parent.name for p in (ws / "results" / "runs").glob("*/config.json"))
    assert len(runs) == 9 and all(f"results/runs/{r}/config.json" in results for r in runs)
    assert sorted(categories["Runs"]) == ["bert_mlm", "gpt2", "transformer"]


@pytest.mark.slow
def test_every_figure_renders_in_headless_chromium(report, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install -y chromium): the report's figures are not rendered")
    ws, path = report
    html = path.read_text(encoding="utf-8")
    results, _ = results_of(html)
    order = [f"figures/{n}.png" for n in FIGURES if f"figures/{n}.png" != SHOWN_LAST] + [SHOWN_LAST]
    driven = tmp_path / "report_driven.html"
    head, body_end, tail = html.rpartition("</body>")  # the page's own; scripts in it may spell one too
    assert body_end, "no </body> in the report"
    driven.write_text(head + DRIVER.replace("__FIGURES__", json.dumps(order)) + body_end + tail, encoding="utf-8")

    # 1. the DOM after the app ran: every figure listed by the app and decoded by the browser
    done = chromium("--dump-dom", driven.as_uri(), profile=tmp_path / "profile-dom")
    assert done.returncode == 0, done.stderr[-3000:]
    dom = done.stdout
    (tmp_path / "report_dom.html").write_text(dom, encoding="utf-8")
    app = dom[dom.index('<div id="app">'):]
    app = app[:app.index("<script")]  # what React rendered, not the page's embedded data
    assert "<img" in app, "the report's app did not render"
    check = re.search(r'<pre id="archscale-check"[^>]*>(.*?)</pre>', dom, re.S)
    assert check, "the driver script did not run"
    seen = json.loads(html_lib.unescape(check.group(1)))
    assert not seen["errors"], seen["errors"]
    for name in FIGURES:
        figure = f"figures/{name}.png"
        assert figure in seen["listing"], f"{figure} is not listed under Figures in the rendered report"
        image = seen["images"].get(figure, {})
        assert "error" not in image, f"{figure}: {image.get('error')}"
        assert (image["width"], image["height"]) == png_size(ws / figure), f"{figure} decoded at another size"
        assert image["box"][2] > 300 and image["box"][3] > 100, f"{figure} shown too small: {image['box']}"
    # the page as left: the last figure shown, its caption beside it (its info button was clicked)
    assert seen["shown"] == SHOWN_LAST and seen.get("info") == SHOWN_LAST
    assert f'src="{results[SHOWN_LAST]["data_uri"]}"' in app, "the last figure is not on the page"
    text = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", app)).split())
    caption = " ".join(re.sub(r"[*`]", "", (REPO / "workflow/report/figures/lc_frontier.rst").read_text()).split())
    assert caption[:60] in text, "the shown figure's caption is not on the page"

    # 2. a screenshot of the same page: the report, with the last figure shown, is not blank
    shot = tmp_path / "report.png"
    done = chromium(f"--screenshot={shot}", driven.as_uri(), profile=tmp_path / "profile-shot")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-3000:]
    if os.environ.get("ARCHSCALE_REPORT_SCREENSHOT"):
        keep = Path(os.environ["ARCHSCALE_REPORT_SCREENSHOT"])
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, keep)
    from PIL import Image

    with Image.open(shot) as im:
        rgb = im.convert("RGB")
        assert rgb.size == (1400, 2000), rgb.size
        assert len(rgb.getcolors(maxcolors=1 << 24)) > 500, "the screenshot is (nearly) blank"
        left, top, width, height = (round(v) for v in seen["images"][SHOWN_LAST]["box"])
        figure = rgb.crop((left, top, left + width, min(top + height, rgb.size[1])))
        colours = figure.getcolors(maxcolors=1 << 20) or []
        white = sum(n for n, c in colours if min(c) > 245)
        assert len(colours) > 200, f"the figure area of the screenshot has {len(colours)} colours: not drawn"
        assert 0.3 < white / (figure.size[0] * figure.size[1]) < 0.995, "the figure area is not a plot on white"
