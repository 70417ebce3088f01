//! A minimal SVG writer: a document of a fixed size and a handful of elements (line,
//! polyline, rect, circle, text, a compact path of dots), with text escaped. Plots are drawn
//! with it in `plot.rs`; it knows nothing about data.

use std::fmt::Write as _;

/// An SVG document being written.
#[derive(Debug, Clone)]
pub struct Svg {
    body: String,
    width: f64,
    height: f64,
}

/// Escape text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with two decimals at most (keeps files small); non-finite becomes 0.
fn n(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_owned() }
}

/// How text is anchored horizontally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// At its start.
    Start,
    /// At its middle.
    Middle,
    /// At its end.
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

impl Svg {
    /// An empty `width` × `height` document with a white background and `title` (the
    /// accessible name shown by viewers).
    pub fn new(width: f64, height: f64, title: &str) -> Self {
        let mut s = Self {
            body: String::new(),
            width,
            height,
        };
        let _ = writeln!(s.body, "<title>{}</title>", escape(title));
        s.rect(0.0, 0.0, width, height, "#ffffff", None);
        s
    }

    /// A line.
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str, width: f64) {
        let _ = writeln!(
            self.body,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}"/>"#,
            n(x1),
            n(y1),
            n(x2),
            n(y2),
            escape(stroke),
            n(width)
        );
    }

    /// A dashed line.
    pub fn dashed(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str) {
        let _ = writeln!(
            self.body,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1" stroke-dasharray="4 3"/>"#,
            n(x1),
            n(y1),
            n(x2),
            n(y2),
            escape(stroke)
        );
    }

    /// A polyline through `points` (nothing when fewer than two).
    pub fn polyline(&mut self, points: &[(f64, f64)], stroke: &str, width: f64) {
        if points.len() < 2 {
            return;
        }
        let pts: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{},{}", n(*x), n(*y)))
            .collect();
        let _ = writeln!(
            self.body,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{}" stroke-linejoin="round"/>"#,
            pts.join(" "),
            escape(stroke),
            n(width)
        );
    }

    /// A rectangle, filled, optionally outlined.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, stroke: Option<&str>) {
        let stroke = stroke
            .map(|s| format!(r#" stroke="{}""#, escape(s)))
            .unwrap_or_default();
        let _ = writeln!(
            self.body,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"{stroke}/>"#,
            n(x),
            n(y),
            n(w.max(0.0)),
            n(h.max(0.0)),
            escape(fill)
        );
    }

    /// A translucent rectangle (for shaded bands).
    pub fn band(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, opacity: f64) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}" fill-opacity="{}"/>"#,
            n(x),
            n(y),
            n(w.max(0.0)),
            n(h.max(0.0)),
            escape(fill),
            n(opacity)
        );
    }

    /// Small square dots at `points`, as one path (far smaller than one element per dot).
    pub fn dots(&mut self, points: &[(f64, f64)], fill: &str, size: f64) {
        if points.is_empty() {
            return;
        }
        let mut d = String::new();
        for (x, y) in points {
            let _ = write!(
                d,
                "M{} {}h{}v{}h-{}z",
                n(x - size / 2.0),
                n(y - size / 2.0),
                n(size),
                n(size),
                n(size)
            );
        }
        let _ = writeln!(
            self.body,
            r#"<path d="{d}" fill="{}" fill-opacity="0.55"/>"#,
            escape(fill)
        );
    }

    /// Text at `(x, y)` (baseline), `size` px.
    pub fn text(&mut self, x: f64, y: f64, s: &str, size: f64, anchor: Anchor) {
        let _ = writeln!(
            self.body,
            r#"<text x="{}" y="{}" font-size="{}" text-anchor="{}">{}</text>"#,
            n(x),
            n(y),
            n(size),
            anchor.as_str(),
            escape(s)
        );
    }

    /// Text rotated by -90° around its anchor (a vertical axis label).
    pub fn vtext(&mut self, x: f64, y: f64, s: &str, size: f64) {
        let _ = writeln!(
            self.body,
            r#"<text x="{}" y="{}" font-size="{}" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
            n(x),
            n(y),
            n(size),
            n(x),
            n(y),
            escape(s)
        );
    }

    /// The finished document.
    pub fn finish(self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\">\n{}</svg>\n",
            self.body,
            w = n(self.width),
            h = n(self.height),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_numbers_are_short() {
        let mut s = Svg::new(10.0, 10.0, "a < b & \"c\"");
        s.text(1.0 / 3.0, 2.0, "<x>", 10.0, Anchor::Start);
        let out = s.finish();
        assert!(out.contains("<title>a &lt; b &amp; &quot;c&quot;</title>"));
        assert!(out.contains(r#"x="0.33""#));
        assert!(out.contains("&lt;x&gt;"));
        assert_eq!(n(f64::NAN), "0");
        assert_eq!(n(2.0), "2");
        assert_eq!(n(-0.001), "0");
    }
}
