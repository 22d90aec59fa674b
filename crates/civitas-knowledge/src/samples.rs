//! Small, valid PDF and DOCX files written from text, for tests and
//! benchmarks (nothing in the product writes these formats).

use std::io::Write;

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream, StringFormat};

/// A PDF with one page per entry; each page's lines are drawn one under
/// the other (an empty line leaves a gap: a new paragraph), in Helvetica
/// with the WinAnsi encoding (Latin-1 accents work).
pub fn pdf(pages: &[Vec<String>]) -> Vec<u8> {
    let mut document = Document::with_version("1.5");
    let pages_id = document.new_object_id();
    let font_id = document.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = document.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids = Vec::new();
    for lines in pages {
        let mut operations = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 11.into()]),
            Operation::new("TL", vec![14.into()]),
            Operation::new("Td", vec![56.into(), 790.into()]),
        ];
        for line in lines {
            if line.is_empty() {
                operations.push(Operation::new("Td", vec![0.into(), (-14).into()]));
                continue;
            }
            let bytes = encoding_rs::WINDOWS_1252.encode(line).0.into_owned();
            operations.push(Operation::new(
                "Tj",
                vec![Object::String(bytes, StringFormat::Literal)],
            ));
            operations.push(Operation::new("T*", vec![]));
        }
        operations.push(Operation::new("ET", vec![]));
        let content = Content { operations }.encode().unwrap_or_default();
        let content_id = document.add_object(Stream::new(dictionary! {}, content).with_compression(true));
        let page_id = document.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(Object::from(page_id));
    }
    let count = kids.len() as i64;
    document.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    document.trailer.set("Root", catalog_id);
    document.compress();
    let mut bytes = Vec::new();
    let _ = document.save_to(&mut bytes);
    bytes
}

/// A paragraph of a [`docx`]: its text and its Word style (`Heading1`,
/// `ListParagraph`, or none).
#[derive(Debug, Clone)]
pub enum DocxBlock {
    Heading(u8, String),
    Paragraph(String),
    ListItem(String),
    Table(Vec<Vec<String>>),
}

/// A minimal Word document holding `blocks`.
pub fn docx(blocks: &[DocxBlock]) -> Vec<u8> {
    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
    fn paragraph(style: Option<&str>, numbered: bool, text: &str) -> String {
        let mut properties = String::new();
        if let Some(style) = style {
            properties.push_str(&format!("<w:pStyle w:val=\"{style}\"/>"));
        }
        if numbered {
            properties.push_str("<w:numPr><w:ilvl w:val=\"0\"/><w:numId w:val=\"1\"/></w:numPr>");
        }
        format!(
            "<w:p><w:pPr>{properties}</w:pPr><w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>",
            escape(text)
        )
    }
    let mut body = String::new();
    for block in blocks {
        match block {
            DocxBlock::Heading(level, text) => {
                body.push_str(&paragraph(Some(&format!("Heading{level}")), false, text))
            }
            DocxBlock::Paragraph(text) => body.push_str(&paragraph(None, false, text)),
            DocxBlock::ListItem(text) => body.push_str(&paragraph(Some("ListParagraph"), true, text)),
            DocxBlock::Table(rows) => {
                body.push_str("<w:tbl>");
                for row in rows {
                    body.push_str("<w:tr>");
                    for cell in row {
                        body.push_str(&format!("<w:tc>{}</w:tc>", paragraph(None, false, cell)));
                    }
                    body.push_str("</w:tr>");
                }
                body.push_str("</w:tbl>");
            }
        }
    }
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}</w:body></w:document>"
    );
    let mut bytes = Vec::new();
    {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut bytes));
        let options = zip::write::SimpleFileOptions::default();
        let members = [
            (
                "[Content_Types].xml",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
                 <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
                 <Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>"
                    .to_owned(),
            ),
            ("word/document.xml", document),
        ];
        for (name, text) in members {
            if zip.start_file(name, options).is_ok() {
                let _ = zip.write_all(text.as_bytes());
            }
        }
        let _ = zip.finish();
    }
    bytes
}
