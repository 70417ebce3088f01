//! The plots of a load report, as SVG text: latency over time and a latency histogram per
//! operation, and the breaker/journal timeline of the outage scenario. Axes carry labels,
//! ticks and units; latency axes are logarithmic (a run spans microseconds to seconds).
//!
//! Pure: data in, text out; the caller writes the files.

use crate::load::histogram::Histogram;
use crate::load::samples::{Sample, WindowStat};
use crate::load::svg::{Anchor, Svg};

const W: f64 = 760.0;
const H: f64 = 400.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 58.0;
const GRID: &str = "#e3e3e3";
const AXIS: &str = "#333333";
const OK_DOTS: &str = "#4a7fb5";
const ERR_DOTS: &str = "#d62728";
const P50: &str = "#1b7837";
const P99: &str = "#e66101";
const SHADE: &str = "#f4a582";

/// A time span to shade on a time axis, with its label (e.g. the injected outage).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Span {
    /// Start, seconds.
    pub from_s: f64,
    /// End, seconds.
    pub to_s: f64,
    /// Label drawn at its top.
    pub label: String,
}

/// A latency in milliseconds as a short label with its unit.
pub fn fmt_ms(ms: f64) -> String {
    let trim = |v: f64| {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    if ms >= 1000.0 {
        format!("{} s", trim(ms / 1000.0))
    } else if ms >= 1.0 {
        format!("{} ms", trim(ms))
    } else {
        format!("{} µs", trim(ms * 1000.0))
    }
}

/// "Nice" linear ticks from 0 covering `max` (steps of 1, 2 or 5 × 10^k, at most 8 ticks).
pub fn linear_ticks(max: f64) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| max / s <= 7.0)
        .unwrap_or(10.0 * mag);
    let n = (max / step - 1e-9).ceil().max(1.0) as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A log10 range in milliseconds covering `lo..=hi`, widened to whole decades.
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let lo = lo.max(1e-3);
    let hi = hi.max(lo * 1.0001);
    let a = lo.log10().floor();
    let mut b = hi.log10().ceil();
    if b <= a {
        b = a + 1.0;
    }
    (a, b)
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn new() -> Self {
        Self {
            x0: LEFT,
            x1: W - RIGHT,
            y0: H - BOTTOM,
            y1: TOP,
        }
    }

    fn width(&self) -> f64 {
        self.x1 - self.x0
    }

    fn height(&self) -> f64 {
        self.y0 - self.y1
    }
}

/// Title, axis lines and axis labels.
fn chrome(svg: &mut Svg, f: &Frame, title: &str, x_label: &str, y_label: &str) {
    svg.text(W / 2.0, 24.0, title, 15.0, Anchor::Middle);
    svg.line(f.x0, f.y0, f.x1, f.y0, AXIS, 1.0);
    svg.line(f.x0, f.y0, f.x0, f.y1, AXIS, 1.0);
    svg.text((f.x0 + f.x1) / 2.0, H - 14.0, x_label, 12.0, Anchor::Middle);
    svg.vtext(18.0, (f.y0 + f.y1) / 2.0, y_label, 12.0);
}

/// Horizontal linear time axis from 0 to `max_s`; returns the x of a time.
fn time_axis(svg: &mut Svg, f: &Frame, max_s: f64) -> impl Fn(f64) -> f64 + use<> {
    let ticks = linear_ticks(max_s);
    let end = ticks.last().copied().unwrap_or(1.0).max(1e-9);
    let (x0, w) = (f.x0, f.width());
    let x = move |t: f64| x0 + t / end * w;
    for t in &ticks {
        let px = x(*t);
        svg.line(px, f.y0, px, f.y1, GRID, 1.0);
        svg.line(px, f.y0, px, f.y0 + 5.0, AXIS, 1.0);
        svg.text(px, f.y0 + 18.0, &fmt_tick(*t), 11.0, Anchor::Middle);
    }
    x
}

/// Vertical log latency axis over decades `a..=b` (log10 ms); returns the y of a latency.
fn log_latency_axis(svg: &mut Svg, f: &Frame, (a, b): (f64, f64)) -> impl Fn(f64) -> f64 + use<> {
    let (y0, h) = (f.y0, f.height());
    let y = move |ms: f64| y0 - (ms.max(1e-3).log10() - a) / (b - a) * h;
    let mut d = a;
    while d <= b + 1e-9 {
        let v = 10f64.powf(d);
        let py = y(v);
        svg.line(f.x0, py, f.x1, py, GRID, 1.0);
        svg.line(f.x0 - 5.0, py, f.x0, py, AXIS, 1.0);
        svg.text(f.x0 - 8.0, py + 4.0, &fmt_ms(v), 11.0, Anchor::End);
        if d < b {
            for m in [2.0, 5.0] {
                let pm = y(v * m);
                svg.line(f.x0 - 3.0, pm, f.x0, pm, AXIS, 1.0);
                if b - a <= 2.0 {
                    svg.text(f.x0 - 8.0, pm + 4.0, &fmt_ms(v * m), 9.0, Anchor::End);
                }
            }
        }
        d += 1.0;
    }
    y
}

fn shade_spans(svg: &mut Svg, f: &Frame, x: &dyn Fn(f64) -> f64, spans: &[Span]) {
    for s in spans {
        let (a, b) = (x(s.from_s).max(f.x0), x(s.to_s).min(f.x1));
        svg.band(a, f.y1, b - a, f.height(), SHADE, 0.25);
        svg.text(a + 3.0, f.y1 + 12.0, &s.label, 10.0, Anchor::Start);
    }
}

fn legend(svg: &mut Svg, f: &Frame, entries: &[(&str, &str, bool)]) {
    let mut x = f.x0 + 8.0;
    let y = TOP - 8.0;
    for (label, color, dot) in entries {
        if *dot {
            svg.dots(&[(x + 6.0, y - 4.0)], color, 6.0);
        } else {
            svg.line(x, y - 4.0, x + 14.0, y - 4.0, color, 2.0);
        }
        svg.text(x + 18.0, y, label, 11.0, Anchor::Start);
        x += 24.0 + 6.5 * label.chars().count() as f64;
    }
}

/// Latency over time of one operation: sampled calls as dots (failed ones red) and the
/// per-window p50 and p99 as lines, on a log latency axis; `spans` are shaded.
pub fn latency_over_time(
    op: &str,
    samples: &[Sample],
    windows: &[WindowStat],
    calls: u64,
    duration_s: f64,
    spans: &[Span],
) -> String {
    let title = format!(
        "{op}: latency over time ({} sampled of {calls} calls)",
        samples.len()
    );
    let mut svg = Svg::new(W, H, &title);
    let f = Frame::new();
    let ms = |ns: u64| ns as f64 / 1e6;
    let lats = samples
        .iter()
        .map(|s| ms(s.latency_ns))
        .chain(windows.iter().flat_map(|w| [w.p50_ms, w.p99_ms]));
    let (lo, hi) = lats.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let range = if hi > 0.0 {
        decades(lo, hi)
    } else {
        (-1.0, 2.0)
    };
    let max_t = samples
        .iter()
        .map(|s| s.at_s)
        .chain(windows.iter().map(|w| w.start_s + w.width_s))
        .fold(duration_s, f64::max);
    chrome(
        &mut svg,
        &f,
        &title,
        "time since the measured phase began (s)",
        "latency (log scale)",
    );
    let x = time_axis(&mut svg, &f, max_t);
    let y = log_latency_axis(&mut svg, &f, range);
    shade_spans(&mut svg, &f, &x, spans);
    let ok: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.ok)
        .map(|s| (x(s.at_s), y(ms(s.latency_ns))))
        .collect();
    let failed: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| !s.ok)
        .map(|s| (x(s.at_s), y(ms(s.latency_ns))))
        .collect();
    svg.dots(&ok, OK_DOTS, 2.5);
    svg.dots(&failed, ERR_DOTS, 3.5);
    let mid = |w: &WindowStat| x(w.start_s + w.width_s / 2.0);
    let p50: Vec<(f64, f64)> = windows.iter().map(|w| (mid(w), y(w.p50_ms))).collect();
    let p99: Vec<(f64, f64)> = windows.iter().map(|w| (mid(w), y(w.p99_ms))).collect();
    svg.polyline(&p99, P99, 1.8);
    svg.polyline(&p50, P50, 1.8);
    let width = windows
        .first()
        .map(|w| format!("{} s windows", fmt_tick(w.width_s)))
        .unwrap_or_default();
    let p50_label = format!("p50 ({width})");
    let p99_label = format!("p99 ({width})");
    legend(
        &mut svg,
        &f,
        &[
            ("ok call", OK_DOTS, true),
            ("failed call", ERR_DOTS, true),
            (&p50_label, P50, false),
            (&p99_label, P99, false),
        ],
    );
    svg.finish()
}

/// Buckets per decade of the histogram plot.
const PER_DECADE: f64 = 5.0;

/// A latency histogram of one operation: calls per log-spaced bucket (5 per decade), with
/// the p50 and p99 marked.
pub fn latency_histogram(op: &str, h: &Histogram) -> String {
    let title = format!("{op}: latency histogram ({} calls)", h.count());
    let mut svg = Svg::new(W, H, &title);
    let f = Frame::new();
    chrome(
        &mut svg,
        &f,
        &title,
        "latency (log scale, 5 buckets per decade)",
        "calls per bucket",
    );
    let ms = |ns: u64| ns as f64 / 1e6;
    let (a, b) = if h.count() > 0 {
        decades(ms(h.min()), ms(h.max()))
    } else {
        (-1.0, 2.0)
    };
    // Re-bucket by each fine bucket's midpoint.
    let n = ((b - a) * PER_DECADE).round() as usize;
    let mut bars = vec![0u64; n.max(1)];
    for (low, high, count) in h.buckets() {
        let mid = ms(low / 2 + high / 2).max(1e-3);
        let k = ((mid.log10() - a) * PER_DECADE).floor();
        let k = (k.max(0.0) as usize).min(bars.len() - 1);
        bars[k] += count;
    }
    let top = bars.iter().copied().max().unwrap_or(0) as f64;
    let ticks = linear_ticks(top);
    let y_max = ticks.last().copied().unwrap_or(1.0).max(1.0);
    let y = |c: f64| f.y0 - c / y_max * f.height();
    for t in &ticks {
        let py = y(*t);
        svg.line(f.x0, py, f.x1, py, GRID, 1.0);
        svg.line(f.x0 - 5.0, py, f.x0, py, AXIS, 1.0);
        svg.text(f.x0 - 8.0, py + 4.0, &fmt_tick(*t), 11.0, Anchor::End);
    }
    let x = |ms: f64| f.x0 + (ms.max(1e-3).log10() - a) / (b - a) * f.width();
    let mut d = a;
    while d <= b + 1e-9 {
        let v = 10f64.powf(d);
        svg.line(x(v), f.y0, x(v), f.y0 + 5.0, AXIS, 1.0);
        svg.text(x(v), f.y0 + 18.0, &fmt_ms(v), 11.0, Anchor::Middle);
        if d < b {
            for m in [2.0, 5.0] {
                svg.line(x(v * m), f.y0, x(v * m), f.y0 + 3.0, AXIS, 1.0);
            }
        }
        d += 1.0;
    }
    let bw = f.width() / bars.len() as f64;
    for (k, c) in bars.iter().enumerate().filter(|(_, c)| **c > 0) {
        let top = y(*c as f64);
        svg.rect(
            f.x0 + k as f64 * bw + 1.0,
            top,
            bw - 2.0,
            f.y0 - top,
            OK_DOTS,
            None,
        );
    }
    for (q, label, color) in [(0.5, "p50", P50), (0.99, "p99", P99)] {
        if h.count() == 0 {
            break;
        }
        let v = ms(h.quantile(q));
        let px = x(v);
        svg.dashed(px, f.y0, px, f.y1, color);
        svg.text(
            px + 3.0,
            f.y1 + if q < 0.9 { 12.0 } else { 26.0 },
            &format!("{label} {}", fmt_ms(v)),
            11.0,
            Anchor::Start,
        );
    }
    svg.finish()
}

/// One sample of the engine timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimelinePoint {
    /// Seconds since the measured phase began.
    pub at_s: f64,
    /// 0 closed, 1 half-open, 2 open.
    pub breaker: u8,
    /// Journaled writes waiting for replay.
    pub journal_depth: u64,
}

/// Breaker state (a coloured strip) and journal depth (a line) over time; `spans` shaded.
pub fn engine_timeline(points: &[TimelinePoint], duration_s: f64, spans: &[Span]) -> String {
    let title = "circuit breaker state and journal depth over time";
    let mut svg = Svg::new(W, H, title);
    let f = Frame::new();
    chrome(
        &mut svg,
        &f,
        title,
        "time since the measured phase began (s)",
        "journaled writes waiting for replay",
    );
    let max_t = points.iter().map(|p| p.at_s).fold(duration_s, f64::max);
    let x = time_axis(&mut svg, &f, max_t);
    let top = points.iter().map(|p| p.journal_depth).max().unwrap_or(0) as f64;
    let ticks = linear_ticks(top);
    let y_max = ticks.last().copied().unwrap_or(1.0).max(1.0);
    // The strip of breaker states sits above the plot area's top 16 px.
    let strip = 14.0;
    let plot_top = f.y1 + strip + 6.0;
    let y = |d: f64| f.y0 - d / y_max * (f.y0 - plot_top);
    for t in &ticks {
        let py = y(*t);
        svg.line(f.x0, py, f.x1, py, GRID, 1.0);
        svg.line(f.x0 - 5.0, py, f.x0, py, AXIS, 1.0);
        svg.text(f.x0 - 8.0, py + 4.0, &fmt_tick(*t), 11.0, Anchor::End);
    }
    shade_spans(&mut svg, &f, &x, spans);
    let colour = |b: u8| match b {
        0 => "#4dac26",
        1 => "#f1b6da",
        _ => "#d01c8b",
    };
    for pair in points.windows(2) {
        let (a, b) = (x(pair[0].at_s), x(pair[1].at_s));
        svg.rect(a, f.y1, b - a, strip, colour(pair[0].breaker), None);
    }
    let line: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (x(p.at_s), y(p.journal_depth as f64)))
        .collect();
    svg.polyline(&line, OK_DOTS, 2.0);
    legend(
        &mut svg,
        &f,
        &[
            ("breaker closed", colour(0), true),
            ("half-open", colour(1), true),
            ("open", colour(2), true),
            ("journal depth", OK_DOTS, false),
        ],
    );
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(linear_ticks(10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = linear_ticks(63.0);
        assert!(*t.last().unwrap() >= 63.0 && t.len() <= 12, "{t:?}");
        let unit = linear_ticks(0.0);
        assert_eq!(unit.len(), 6);
        assert!((unit[5] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn latencies_read_with_their_unit() {
        assert_eq!(fmt_ms(0.05), "50 µs");
        assert_eq!(fmt_ms(2.0), "2 ms");
        assert_eq!(fmt_ms(1500.0), "1.5 s");
    }

    /// Parse `doc` far enough to prove it well formed: one `<svg>` root, every tag closed in
    /// order, attribute values quoted, no unescaped `<` or `&` in text, no non-finite number.
    /// Returns the element names in document order.
    fn elements(doc: &str) -> Vec<String> {
        assert!(
            !doc.contains("NaN") && !doc.contains("inf"),
            "non-finite number"
        );
        let mut names = Vec::new();
        let mut open: Vec<String> = Vec::new();
        let mut rest = doc.trim();
        assert!(rest.starts_with("<svg "), "root is <svg>");
        while let Some(lt) = rest.find('<') {
            let text = &rest[..lt];
            assert!(!text.contains('>'), "stray '>' in text {text:?}");
            for (i, _) in text.match_indices('&') {
                let entity = &text[i..text[i..].find(';').map_or(text.len(), |e| i + e + 1)];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity),
                    "bare '&' in {text:?}"
                );
            }
            let gt = rest[lt..].find('>').expect("tag closed") + lt;
            let tag = &rest[lt + 1..gt];
            assert!(!tag.contains('<'), "'<' inside tag {tag:?}");
            assert_eq!(
                tag.matches('"').count() % 2,
                0,
                "unbalanced quotes in {tag:?}"
            );
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    open.pop().as_deref(),
                    Some(name),
                    "closing tag out of order"
                );
            } else {
                let name: String = tag
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                assert!(!name.is_empty(), "tag name in {tag:?}");
                if !tag.ends_with('/') {
                    open.push(name.clone());
                }
                if names.is_empty() {
                    assert_eq!(name, "svg");
                } else {
                    assert!(!open.is_empty(), "a second root element {name}");
                }
                names.push(name);
            }
            rest = &rest[gt + 1..];
            if open.is_empty() {
                assert!(rest.trim().is_empty(), "content after the root element");
                break;
            }
        }
        assert!(open.is_empty(), "unclosed elements {open:?}");
        names
    }

    fn count(names: &[String], name: &str) -> usize {
        names.iter().filter(|n| *n == name).count()
    }

    fn data() -> (Vec<Sample>, Vec<WindowStat>, Histogram) {
        let mut h = Histogram::new(7);
        let mut samples = Vec::new();
        for i in 0..500u64 {
            let latency_ns = 50_000 + (i % 97) * 30_000 + if i % 50 == 0 { 80_000_000 } else { 0 };
            h.record(latency_ns);
            samples.push(Sample {
                at_s: i as f64 / 100.0,
                latency_ns,
                ok: i % 123 != 0,
            });
        }
        let windows = (0..5)
            .map(|w| WindowStat {
                start_s: w as f64,
                width_s: 1.0,
                count: 100,
                p50_ms: 1.5,
                p99_ms: 40.0 + w as f64,
            })
            .collect();
        (samples, windows, h)
    }

    #[test]
    fn the_latency_over_time_plot_is_well_formed_with_axes_and_series() {
        let (samples, windows, _) = data();
        let span = Span {
            from_s: 1.0,
            to_s: 2.0,
            label: "outage <injected> & over".into(),
        };
        let doc = latency_over_time("log_step", &samples, &windows, 500, 5.0, &[span]);
        let names = elements(&doc);
        assert_eq!(count(&names, "title"), 1);
        assert_eq!(count(&names, "polyline"), 2, "p50 and p99 lines");
        assert!(count(&names, "path") >= 2, "ok and failed dots");
        assert!(count(&names, "line") > 10, "axes, ticks and grid");
        for label in [
            "log_step: latency over time (500 sampled of 500 calls)",
            "time since the measured phase began (s)",
            "latency (log scale)",
            "1 ms",
            "100 ms",
            "outage &lt;injected&gt; &amp; over",
        ] {
            assert!(doc.contains(label), "{label}");
        }
    }

    #[test]
    fn the_histogram_is_well_formed_with_bars_and_quantiles() {
        let (_, _, h) = data();
        let doc = latency_histogram("retrieve", &h);
        let names = elements(&doc);
        assert!(count(&names, "rect") > 5, "background and bars");
        assert!(doc.contains("retrieve: latency histogram (500 calls)"));
        assert!(doc.contains("calls per bucket"));
        assert!(
            doc.contains(">p50 ") && doc.contains(">p99 "),
            "quantile marks"
        );
        assert!(doc.contains(r#"stroke-dasharray="4 3""#));
    }

    #[test]
    fn empty_inputs_still_give_well_formed_plots() {
        elements(&latency_over_time("get_episode", &[], &[], 0, 0.0, &[]));
        elements(&latency_histogram("get_episode", &Histogram::new(7)));
        elements(&engine_timeline(&[], 0.0, &[]));
    }

    #[test]
    fn the_engine_timeline_is_well_formed_with_states_and_depth() {
        let points: Vec<TimelinePoint> = (0..50)
            .map(|i| TimelinePoint {
                at_s: i as f64 * 0.1,
                breaker: match i {
                    10..=29 => 2,
                    30..=34 => 1,
                    _ => 0,
                },
                journal_depth: if (10..40).contains(&i) { i * 10 } else { 0 },
            })
            .collect();
        let span = Span {
            from_s: 1.0,
            to_s: 3.0,
            label: "durable store outage".into(),
        };
        let doc = engine_timeline(&points, 5.0, &[span]);
        let names = elements(&doc);
        assert_eq!(count(&names, "polyline"), 1, "journal depth line");
        assert!(
            doc.contains("#d01c8b") && doc.contains("#4dac26"),
            "open and closed strips"
        );
        assert!(doc.contains("journaled writes waiting for replay"));
        assert!(doc.contains("durable store outage"));
    }
}
