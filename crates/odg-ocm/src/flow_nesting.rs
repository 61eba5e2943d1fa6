//! A linear pre-scan of YAML text that refuses deep flow nesting (`[[[[…`, `{a: {a: …`) before the
//! YAML parser sees the document.
//!
//! Why: libyaml's scanner (the port inside serde_yaml_ng) keeps one "simple key" slot per flow level
//! and walks all of them for every token (`yaml_parser_stale_simple_keys`), and serde_yaml_ng reads
//! every event of the document before our depth-limited value builder gets the first one. A 200 KB
//! label value of `[` x 100,000 then `]` x 100,000 therefore cost 22.9 s of CPU before the builder
//! refused it. Block nesting (indentation, `- - -`) has no such cost: it needs no guard here.
//!
//! The scan mirrors libyaml's tokenizer only as far as needed to know which `[`, `{`, `]` and `}`
//! are flow indicators: quoted scalars, comments, block scalars and plain scalars (which may hold
//! brackets in block context) are skipped. Where it cannot be sure, it counts: an overestimate
//! could only refuse a document with many unbalanced brackets at odd places, an underestimate would
//! let a hostile document through. A document this scan passes still meets the real depth limit
//! in the value builder; the scan only has to keep the parser's work linear.

use crate::error::OcmError;

/// Refuses `text` when its flow collections nest deeper than `max_depth`. Runs in one pass.
pub(crate) fn check_flow_nesting(text: &str, max_depth: usize) -> Result<(), OcmError> {
    FlowNestingScan {
        bytes: text.as_bytes(),
        position: 0,
        line_start: 0,
        max_depth,
    }
    .run()
}

/// What a line of block context leaves open for the lines below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenAtLineEnd {
    Nothing,
    /// A plain scalar that lines indented deeper than `parent_column` continue.
    PlainScalar {
        parent_column: isize,
    },
    /// A `|` or `>` scalar whose content is every line indented deeper than `parent_column`.
    BlockScalar {
        parent_column: isize,
    },
}

struct FlowNestingScan<'text> {
    bytes: &'text [u8],
    position: usize,
    line_start: usize,
    max_depth: usize,
}

impl FlowNestingScan<'_> {
    fn run(&mut self) -> Result<(), OcmError> {
        let mut open = OpenAtLineEnd::Nothing;
        while self.position < self.bytes.len() {
            self.line_start = self.position;
            let indent = self.skip_while(|byte| byte == b' ');
            let first = self.position;
            self.skip_while(|byte| byte == b' ' || byte == b'\t');
            if self.at_line_end() {
                // blank lines neither end block scalars nor plain scalars
                self.skip_line_break();
                continue;
            }
            let column = indent as isize;
            match open {
                OpenAtLineEnd::BlockScalar { parent_column } if column > parent_column.max(0) => {
                    self.skip_to_line_end();
                    self.skip_line_break();
                    continue;
                }
                OpenAtLineEnd::PlainScalar { parent_column } if column > parent_column => {
                    // a comment ends the scalar; whatever the line holds before it is scalar text
                    open = if self.skip_plain_continuation_line() {
                        OpenAtLineEnd::Nothing
                    } else {
                        open
                    };
                    self.skip_line_break();
                    continue;
                }
                _ => {}
            }
            self.position = first;
            open = self.block_line(indent)?;
            self.skip_line_break();
        }
        Ok(())
    }

    /// Scans one line of block context from its first non-blank byte (and any flow collection or
    /// quoted scalar that starts on it, whatever lines they span), up to the line break.
    fn block_line(&mut self, indent: usize) -> Result<OpenAtLineEnd, OcmError> {
        // the column of the innermost block collection entry known on this line: a `-`, `?` or
        // the key before a `: `. Without one, the parent is at most one column left of the text.
        let mut collection_column = indent as isize - 1;
        let mut node_column: Option<isize> = None;
        let mut at_node_start = true;
        let mut in_plain_scalar = false;
        loop {
            self.skip_while(|byte| byte == b' ' || byte == b'\t');
            if self.at_line_end() {
                return Ok(if in_plain_scalar {
                    OpenAtLineEnd::PlainScalar {
                        parent_column: collection_column,
                    }
                } else {
                    OpenAtLineEnd::Nothing
                });
            }
            let byte = self.bytes[self.position];
            let column = (self.position - self.line_start) as isize;
            let followed_by_blank = self.blank_or_end_at(self.position + 1);
            if !at_node_start {
                if byte == b':' && followed_by_blank {
                    collection_column = node_column.unwrap_or(column);
                    node_column = None;
                    at_node_start = true;
                    in_plain_scalar = false;
                } else if byte == b'#' && self.preceded_by_blank() {
                    self.skip_to_line_end();
                    continue;
                }
                // otherwise the rest of a plain scalar, or junk after a node that the parser refuses
                self.position += 1;
                continue;
            }
            match byte {
                b'#' => self.skip_to_line_end(),
                b'-' | b'?' | b':' if followed_by_blank => {
                    collection_column = column;
                    node_column = None;
                    self.position += 1;
                }
                b'-' | b'.' if column == 0 && self.document_marker() => {
                    collection_column = -1;
                    node_column = None;
                    self.position += 3;
                }
                b'%' if column == 0 => self.skip_to_line_end(),
                b'[' | b'{' => {
                    node_column.get_or_insert(column);
                    self.position += 1;
                    self.flow_collection()?;
                    at_node_start = false;
                }
                b'\'' | b'"' => {
                    node_column.get_or_insert(column);
                    self.skip_quoted_scalar(byte);
                    at_node_start = false;
                }
                b'|' | b'>' => {
                    self.skip_to_line_end();
                    return Ok(OpenAtLineEnd::BlockScalar {
                        parent_column: collection_column,
                    });
                }
                b'&' | b'!' | b'*' => {
                    node_column.get_or_insert(column);
                    self.skip_while(|byte| !is_blank_or_break(byte));
                    at_node_start = byte != b'*';
                }
                _ => {
                    node_column.get_or_insert(column);
                    at_node_start = false;
                    in_plain_scalar = true;
                    self.position += 1;
                }
            }
        }
    }

    /// Scans a flow collection whose opening bracket was just consumed, to its matching close.
    fn flow_collection(&mut self) -> Result<(), OcmError> {
        let mut depth = 1;
        self.check_depth(depth)?;
        let mut at_node_start = true;
        let mut in_plain_scalar = false;
        while self.position < self.bytes.len() {
            let break_length = self.line_break_length_at(self.position);
            if break_length > 0 {
                self.position += break_length;
                self.line_start = self.position;
                continue;
            }
            let byte = self.bytes[self.position];
            match byte {
                b' ' | b'\t' => {}
                b'#' if self.preceded_by_blank() => {
                    self.skip_to_line_end();
                    continue;
                }
                b'[' | b'{' => {
                    depth += 1;
                    self.check_depth(depth)?;
                    at_node_start = true;
                    in_plain_scalar = false;
                }
                b']' | b'}' => {
                    depth -= 1;
                    at_node_start = false;
                    in_plain_scalar = false;
                    if depth == 0 {
                        self.position += 1;
                        return Ok(());
                    }
                }
                b',' => {
                    at_node_start = true;
                    in_plain_scalar = false;
                }
                b':' if !in_plain_scalar || self.blank_or_flow_indicator_at(self.position + 1) => {
                    at_node_start = true;
                    in_plain_scalar = false;
                }
                b'?' if at_node_start && self.blank_or_end_at(self.position + 1) => {}
                b'\'' | b'"' if at_node_start => {
                    self.skip_quoted_scalar(byte);
                    at_node_start = false;
                    continue;
                }
                b'&' | b'!' | b'*' if at_node_start => {
                    // properties end at flow indicators too: counting a bracket the parser would
                    // read as part of a tag is the safe mistake
                    self.skip_while(|byte| {
                        !is_blank_or_break(byte)
                            && !matches!(byte, b',' | b'[' | b']' | b'{' | b'}')
                    });
                    at_node_start = byte != b'*';
                    continue;
                }
                _ => {
                    at_node_start = false;
                    in_plain_scalar = true;
                }
            }
            self.position += 1;
        }
        Ok(())
    }

    fn check_depth(&self, depth: usize) -> Result<(), OcmError> {
        if depth > self.max_depth {
            return Err(OcmError::NestingTooDeep {
                limit: self.max_depth,
            });
        }
        Ok(())
    }

    /// Skips a quoted scalar whose opening quote is at the current position, across lines.
    fn skip_quoted_scalar(&mut self, quote: u8) {
        self.position += 1;
        while self.position < self.bytes.len() {
            let break_length = self.line_break_length_at(self.position);
            if break_length > 0 {
                self.position += break_length;
                self.line_start = self.position;
                continue;
            }
            let byte = self.bytes[self.position];
            if quote == b'"' && byte == b'\\' {
                self.position += 2;
                continue;
            }
            if byte == quote {
                if quote == b'\'' && self.bytes.get(self.position + 1) == Some(&b'\'') {
                    self.position += 2;
                    continue;
                }
                self.position += 1;
                return;
            }
            self.position += 1;
        }
        self.position = self.bytes.len();
    }

    /// Skips a line continuing a plain scalar; true when a comment on it ended the scalar.
    fn skip_plain_continuation_line(&mut self) -> bool {
        while !self.at_line_end() {
            if self.bytes[self.position] == b'#' && self.preceded_by_blank() {
                self.skip_to_line_end();
                return true;
            }
            self.position += 1;
        }
        false
    }

    /// `---` or `...` followed by a blank or the end: a document marker (only at column 0).
    fn document_marker(&self) -> bool {
        let rest = &self.bytes[self.position..];
        (rest.starts_with(b"---") || rest.starts_with(b"..."))
            && self.blank_or_end_at(self.position + 3)
    }

    fn skip_while(&mut self, mut predicate: impl FnMut(u8) -> bool) -> usize {
        let start = self.position;
        while self.position < self.bytes.len()
            && self.line_break_length_at(self.position) == 0
            && predicate(self.bytes[self.position])
        {
            self.position += 1;
        }
        self.position - start
    }

    fn skip_to_line_end(&mut self) {
        self.skip_while(|_| true);
    }

    fn skip_line_break(&mut self) {
        self.position += self.line_break_length_at(self.position);
    }

    fn at_line_end(&self) -> bool {
        self.position >= self.bytes.len() || self.line_break_length_at(self.position) > 0
    }

    fn preceded_by_blank(&self) -> bool {
        self.position == self.line_start || matches!(self.bytes[self.position - 1], b' ' | b'\t')
    }

    fn blank_or_end_at(&self, position: usize) -> bool {
        position >= self.bytes.len()
            || self.line_break_length_at(position) > 0
            || matches!(self.bytes[position], b' ' | b'\t')
    }

    fn blank_or_flow_indicator_at(&self, position: usize) -> bool {
        self.blank_or_end_at(position)
            || matches!(self.bytes[position], b',' | b'[' | b']' | b'{' | b'}')
    }

    /// Line breaks as libyaml knows them: LF, CR, and in UTF-8 NEL, LINE SEPARATOR, PARAGRAPH
    /// SEPARATOR. Missing one would let text the parser reads on a new line hide in a comment.
    fn line_break_length_at(&self, position: usize) -> usize {
        match &self.bytes[position..] {
            [b'\n', ..] | [b'\r', ..] => 1,
            [0xC2, 0x85, ..] => 2,
            [0xE2, 0x80, 0xA8 | 0xA9, ..] => 3,
            _ => 0,
        }
    }
}

fn is_blank_or_break(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
#[path = "flow_nesting_tests.rs"]
mod tests;
