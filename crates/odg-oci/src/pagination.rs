//! RFC 8288 `Link` header parsing for tag-list pagination (`<...>; rel="next"`, relative or absolute).

use url::Url;

/// The `rel="next"` target of a `Link` header value, resolved against the URL of the page that carried it.
pub fn parse_next_link(header_value: &str, base: &Url) -> Option<Url> {
    let mut rest = header_value;
    loop {
        let open = rest.find('<')?;
        let close = open + rest[open..].find('>')?;
        let target = rest[open + 1..close].trim();
        rest = &rest[close + 1..];
        let params_end = end_of_link_value(rest);
        let params = &rest[..params_end];
        rest = &rest[params_end..];
        if params_say_next(params) {
            return base.join(target).ok();
        }
    }
}

/// Index of the `,` (outside quotes) that ends this link-value's parameters, or the end.
fn end_of_link_value(params: &str) -> usize {
    let mut in_quotes = false;
    let mut escaped = false;
    for (index, character) in params.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => return index,
            _ => {}
        }
    }
    params.len()
}

fn params_say_next(params: &str) -> bool {
    params.split(';').any(|param| {
        let Some((key, value)) = param.split_once('=') else {
            return false;
        };
        key.trim().eq_ignore_ascii_case("rel")
            && value
                .trim()
                .trim_matches('"')
                .split_ascii_whitespace()
                .any(|relation| relation.eq_ignore_ascii_case("next"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://registry.example.com/v2/a/b/tags/list?n=2").unwrap()
    }

    #[test]
    fn relative_next_link() {
        let next =
            parse_next_link(r#"</v2/a/b/tags/list?n=2&last=t2>; rel="next""#, &base()).unwrap();
        assert_eq!(
            next.as_str(),
            "https://registry.example.com/v2/a/b/tags/list?n=2&last=t2"
        );
    }

    #[test]
    fn absolute_next_link_and_unquoted_rel() {
        let next = parse_next_link(
            "<http://other.example.com:5000/v2/a/b/tags/list?last=x>;rel=next",
            &base(),
        )
        .unwrap();
        assert_eq!(
            next.as_str(),
            "http://other.example.com:5000/v2/a/b/tags/list?last=x"
        );
    }

    #[test]
    fn picks_next_among_several_links() {
        let header = r#"</v2/a/b/tags/list?last=a>; rel="prev"; title="a, b", </v2/a/b/tags/list?last=z>; rel="last next""#;
        let next = parse_next_link(header, &base()).unwrap();
        assert_eq!(next.query(), Some("last=z"));
    }

    #[test]
    fn no_next() {
        assert_eq!(parse_next_link(r#"</x>; rel="prev""#, &base()), None);
        assert_eq!(parse_next_link("", &base()), None);
        assert_eq!(parse_next_link("garbage", &base()), None);
        assert_eq!(parse_next_link("<unterminated; rel=next", &base()), None);
    }
}
