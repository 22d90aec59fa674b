//! Model output as HTML: Markdown (CommonMark with tables, strikethrough
//! and task lists) with every piece of raw HTML shown as text, links only
//! to `http`, `https` and `mailto`, and images from other sites shown as
//! links unless the installation allows them.

use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};

fn safe_link(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")
}

/// Renders `text` as sanitized HTML.
pub fn render(text: &str, remote_images: bool) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    // Links cannot nest, so one flag says whether the open link was dropped.
    let mut dropped_link = false;
    let mut image_as_link = Vec::new();
    let events = Parser::new_ext(text, options).filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            if safe_link(&dest_url) {
                dropped_link = false;
                Some(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }))
            } else {
                dropped_link = true;
                None
            }
        }
        Event::End(TagEnd::Link) => {
            if std::mem::take(&mut dropped_link) {
                None
            } else {
                Some(Event::End(TagEnd::Link))
            }
        }
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let remote = safe_link(&dest_url) && !dest_url.to_ascii_lowercase().starts_with("mailto:");
            if remote && remote_images {
                image_as_link.push(false);
                Some(Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    title,
                    id,
                }))
            } else if remote {
                // The alt text becomes the text of a link to the image.
                image_as_link.push(true);
                Some(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }))
            } else {
                image_as_link.push(true);
                dropped_link = true;
                None
            }
        }
        Event::End(TagEnd::Image) => match image_as_link.pop() {
            Some(false) => Some(Event::End(TagEnd::Image)),
            _ if std::mem::take(&mut dropped_link) => None,
            _ => Some(Event::End(TagEnd::Link)),
        },
        other => Some(other),
    });
    let mut out = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn raw_html_is_shown_as_text() {
        let html = render("Hi <script>alert(1)</script> <img src=x onerror=alert(1)>", false);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        let block = render("<div onclick=\"x()\">\nblock\n</div>", false);
        assert!(!block.contains("<div"), "{block}");
    }

    #[test]
    fn only_safe_links_are_links() {
        let html = render(
            "[ok](https://service-public.fr) [bad](javascript:alert(1)) [data](data:text/html,x)",
            false,
        );
        assert!(
            html.contains("<a href=\"https://service-public.fr\">ok</a>"),
            "{html}"
        );
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("data:"), "{html}");
        assert!(
            html.contains("bad") && html.contains("data"),
            "the link text was lost: {html}"
        );
        let mail = render("<mailto:foia@agency.gov>", false);
        assert!(mail.contains("href=\"mailto:foia@agency.gov\""), "{mail}");
    }

    #[test]
    fn remote_images_become_links_unless_allowed() {
        let html = render("![chart](https://example.org/c.png)", false);
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.org/c.png\">chart</a>"),
            "{html}"
        );
        let allowed = render("![chart](https://example.org/c.png)", true);
        assert!(
            allowed.contains("<img src=\"https://example.org/c.png\" alt=\"chart\""),
            "{allowed}"
        );
        let local = render("![x](javascript:alert(1))", true);
        assert!(
            !local.contains("<img") && !local.contains("javascript"),
            "{local}"
        );
    }

    #[test]
    fn code_blocks_tables_and_lists() {
        let html = render(
            "```rust\nfn main() { println!(\"<b>\"); }\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n- ~~old~~",
            false,
        );
        assert!(html.contains("<pre><code class=\"language-rust\">"), "{html}");
        assert!(html.contains("&lt;b&gt;"), "{html}");
        assert!(html.contains("<table>") && html.contains("<td>2</td>"), "{html}");
        assert!(html.contains("type=\"checkbox\""), "{html}");
        assert!(html.contains("<del>old</del>"), "{html}");
    }
}
