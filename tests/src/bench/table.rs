//! A small aligned table of figures, printed to stdout.

use std::fmt::Write as _;

/// Rows of (figure, value, note) printed under a title.
#[derive(Debug, Default)]
pub struct Table {
    title: String,
    rows: Vec<[String; 3]>,
}

impl Table {
    /// An empty table titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    /// Adds one figure with its value and a note (the target or the baseline it compares with).
    pub fn row(
        &mut self,
        figure: impl Into<String>,
        value: impl Into<String>,
        note: impl Into<String>,
    ) {
        self.rows.push([figure.into(), value.into(), note.into()]);
    }

    /// The table as text (Markdown, so it can be pasted into BENCHMARKS.md).
    pub fn render(&self) -> String {
        let mut widths = [6, 5, 4];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = format!("\n### {}\n\n", self.title);
        let line = |out: &mut String, cells: [&str; 3]| {
            let _ = writeln!(
                out,
                "| {:<w0$} | {:>w1$} | {:<w2$} |",
                cells[0],
                cells[1],
                cells[2],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
        };
        line(&mut out, ["figure", "value", "note"]);
        let _ = writeln!(
            out,
            "|{}|{}:|{}|",
            "-".repeat(widths[0] + 2),
            "-".repeat(widths[1] + 1),
            "-".repeat(widths[2] + 2)
        );
        for row in &self.rows {
            line(&mut out, [&row[0], &row[1], &row[2]]);
        }
        out
    }

    /// Prints the table.
    pub fn print(&self) {
        println!("{}", self.render());
    }
}

/// `1234567.8` → `"1,234,568"`.
pub fn thousands(value: f64) -> String {
    let whole = value.round() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if whole < 0 { format!("-{out}") } else { out }
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }

    #[test]
    fn table_renders_every_row() {
        let mut t = Table::new("x");
        t.row("rate", "1,000", "target 50,000");
        let text = t.render();
        assert!(text.contains("| rate "));
        assert!(text.contains("target 50,000 |"));
    }
}
