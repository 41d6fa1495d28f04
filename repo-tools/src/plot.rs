//! How a release's waves reach a fleet: a table for the terminal and an SVG chart.
//!
//! Both count, at each moment, how many of the 2048 seeds may take the update, with the same
//! [`update_metadata::Waves::is_ready`] rule that updog applies on the node.

use jiff::{SignedDuration, Timestamp};
use std::fmt::Write;
use update_metadata::{SEED_COUNT, Seed, Waves};

/// Seeds ready at `t`.
pub fn ready_at(waves: &Waves, t: Timestamp) -> u32 {
    (0..SEED_COUNT)
        .filter_map(|s| Seed::new(u64::from(s)).ok())
        .filter(|s| waves.is_ready(*s, t))
        .count() as u32
}

/// One row per wave: its first seed, its start, and how many seeds are ready when it starts.
pub fn table(waves: &Waves) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5}  {:<20}  {:>11}  {:>7}",
        "wave", "starts", "seeds ready", "fleet"
    );
    if waves.is_empty() {
        let _ = writeln!(out, "(no waves: every seed is ready at once)");
        return out;
    }
    for (i, (seed, start)) in waves.iter().enumerate() {
        let ready = ready_at(waves, start);
        let _ = writeln!(
            out,
            "{:>5}  {:<20}  {:>11}  {:>6.1}%   (first seed {})",
            i,
            start.to_string(),
            ready,
            f64::from(ready) * 100.0 / f64::from(SEED_COUNT),
            seed.get()
        );
    }
    if let Some((_, last)) = waves.iter().last() {
        let done = ready_at(waves, last);
        let _ = writeln!(
            out,
            "every seed is ready from {last} ({done} of {SEED_COUNT})"
        );
    }
    out
}

/// An SVG line chart of seeds ready over time, with each wave's start marked.
pub fn svg(waves: &Waves, title: &str) -> String {
    let (width, height, margin) = (900.0_f64, 420.0_f64, 60.0_f64);
    let starts: Vec<(Seed, Timestamp)> = waves.iter().collect();
    let (first, last) = match (starts.first(), starts.last()) {
        (Some((_, a)), Some((_, b))) => (*a, *b),
        _ => {
            let now = Timestamp::now();
            (now, now)
        }
    };
    let span = last
        .duration_since(first)
        .max(SignedDuration::from_hours(1));
    let pad = span / 20;
    let (t0, t1) = (first - pad, last + pad);
    let total = t1.duration_since(t0).as_secs_f64();
    let x = |t: Timestamp| {
        margin + (t.duration_since(t0).as_secs_f64() / total) * (width - 2.0 * margin)
    };
    let y =
        |n: u32| height - margin - f64::from(n) / f64::from(SEED_COUNT) * (height - 2.0 * margin);

    let samples = 400;
    let mut points = String::new();
    for i in 0..=samples {
        let t = t0 + SignedDuration::from_secs_f64(total * f64::from(i) / f64::from(samples));
        let _ = write!(points, "{:.1},{:.1} ", x(t), y(ready_at(waves, t)));
    }
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="16">{}</text>"#,
        width / 2.0,
        escape(title)
    );
    // Axes and grid: 0, 25, 50, 75, 100 % of the fleet.
    for pct in [0u32, 25, 50, 75, 100] {
        let n = SEED_COUNT * pct / 100;
        let _ = writeln!(
            svg,
            r##"<line x1="{margin}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{pct}%</text>"##,
            width - margin,
            margin - 6.0,
            y(n) + 4.0,
            y = y(n),
        );
    }
    for (i, (seed, start)) in starts.iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{margin}" y2="{}" stroke="#99c" stroke-dasharray="4 3"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#336">wave {i} (seed {})</text>"##,
            height - margin,
            height - margin + 16.0 + 14.0 * (i % 2) as f64,
            seed.get(),
            x = x(*start),
        );
    }
    let _ = writeln!(
        svg,
        r##"<polyline fill="none" stroke="#c33" stroke-width="2" points="{}"/>"##,
        points.trim_end()
    );
    let _ = writeln!(
        svg,
        r#"<text x="{margin}" y="{}">{} → {}</text>"#,
        height - 8.0,
        t0,
        t1
    );
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use update_metadata::WavePolicy;

    #[test]
    fn the_default_policy_reaches_the_whole_fleet_in_order() {
        let start: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let waves = WavePolicy::bottlerocket_default().to_waves(start).unwrap();
        let starts: Vec<Timestamp> = waves.iter().map(|(_, t)| t).collect();
        let counts: Vec<u32> = starts.iter().map(|t| ready_at(&waves, *t)).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        assert_eq!(*counts.last().unwrap(), SEED_COUNT);
        let table = table(&waves);
        assert_eq!(table.lines().count(), starts.len() + 2, "{table}");
        let svg = svg(&waves, "1.1.0 <x86_64>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("1.1.0 &lt;x86_64&gt;"));
        assert_eq!(svg.matches("wave ").count(), starts.len());
    }
}
