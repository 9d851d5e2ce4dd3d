//! The HTML report as a person sees it: rendered by headless Chromium (Debian's `chromium`),
//! with a screenshot kept, and assertions on the rendered page — the summary table's rows, the
//! plots laid out at their size with their text, every gallery picture decoded. `#[ignore]`d
//! because a fresh machine has no Chromium; `.ci/run` installs it and runs
//! `cargo test --test it browser:: -- --ignored`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::report::{benchmark, two_categories};

/// Reads the rendered page back: appended to a copy of the report, it writes what the browser
/// laid out and decoded into `<pre id="render-check">` once the page has loaded.
const PROBE: &str = r#"<script>
window.addEventListener('load', () => {
  const big = (e, w, h) => { const b = e.getBoundingClientRect(); return b.width >= w && b.height >= h; };
  const svgs = [...document.querySelectorAll('figure.plot svg')];
  const imgs = [...document.querySelectorAll('.gallery img')];
  const r = {
    sections: document.querySelectorAll('section.category').length,
    summary_rows: document.querySelectorAll('table#summary tr').length,
    summary_visible: big(document.querySelector('table#summary'), 400, 60),
    plots: svgs.length,
    plots_laid_out: svgs.filter(s => big(s, 300, 200)).length,
    plots_with_text: svgs.filter(s => s.querySelectorAll('text').length >= 8).length,
    images: imgs.length,
    images_decoded: imgs.filter(i => i.complete && i.naturalWidth > 0 && big(i, 100, 50)).length,
    page_height: Math.ceil(document.documentElement.scrollHeight),
  };
  const pre = document.createElement('pre');
  pre.id = 'render-check';
  pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
});
</script>"#;

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(name).output() {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("headless Chromium is missing: install Debian's `chromium` package (.ci/run does)");
}

fn headless(browser: &Path) -> Command {
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--virtual-time-budget=10000",
    ]);
    c
}

#[test]
#[ignore = "needs headless Chromium; run by .ci/run"]
fn the_report_renders_in_headless_chromium_with_its_table_plots_and_pictures() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let data = two_categories(dir.path());
    let out = dir.path().join("bench");
    benchmark(&data, &out).ok();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let pictures = html.matches("<img class=\"picture\"").count();
    let probed = dir.path().join("probed.html");
    std::fs::write(
        &probed,
        html.replace("</body>", &format!("{PROBE}\n</body>")),
    )
    .unwrap();
    let url = format!("file://{}", probed.display());

    let dom = headless(&browser)
        .args(["--window-size=1280,1600", "--dump-dom"])
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    let start = dom
        .find("<pre id=\"render-check\">")
        .unwrap_or_else(|| panic!("the probe did not run; the page:\n{dom:.2000}"));
    let json = &dom[start + 23..];
    let json = &json[..json.find("</pre>").unwrap()];
    let r: serde_json::Value = serde_json::from_str(json).unwrap();
    println!("rendered page: {r}");
    assert_eq!(r["sections"], 2, "{r}");
    // Header, one row per category, the mean.
    assert_eq!(r["summary_rows"], 4, "{r}");
    assert_eq!(r["summary_visible"], true, "{r}");
    // A ROC curve and a score histogram per category, drawn at size, with axis labels.
    assert_eq!(r["plots"], 4, "{r}");
    assert_eq!(r["plots_laid_out"], 4, "{r}");
    assert_eq!(r["plots_with_text"], 4, "{r}");
    // Every gallery picture decoded and shown (image and heat map of each tile).
    assert_eq!(r["images"], pictures, "{r}");
    assert!(pictures >= 16, "{r}");
    assert_eq!(r["images_decoded"], pictures, "{r}");

    // The screenshot of the whole page, kept for people to look at.
    let height = r["page_height"].as_u64().unwrap().clamp(800, 16000);
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let status = headless(&browser)
        .arg(format!("--window-size=1280,{height}"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", out.join("report.html").display()))
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let png = image::open(&shot).unwrap();
    assert_eq!((png.width(), png.height()), (1280, height as u32));
    println!("screenshot: {}", shot.display());
}
