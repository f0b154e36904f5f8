//! Markdown the generated documents and reports share.

/// Text safe inside a Markdown table cell: pipes escaped, line breaks as spaces. The one
/// escaping every generated Markdown uses.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn cells_keep_tables_intact() {
        assert_eq!(super::cell("a | b\nc"), "a \\| b c");
    }
}
