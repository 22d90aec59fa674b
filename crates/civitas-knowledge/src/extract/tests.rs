use super::*;
use crate::samples::{docx, pdf, DocxBlock};
use lopdf::dictionary;

fn kinds(extracted: &Extracted) -> Vec<(BlockKind, &str)> {
    extracted
        .blocks
        .iter()
        .map(|block| (block.kind, block.text.as_str()))
        .collect()
}

fn lines(text: &[&str]) -> Vec<String> {
    text.iter().map(|line| (*line).to_owned()).collect()
}

#[test]
fn formats_are_told_by_their_bytes_before_their_names() {
    let pdf_bytes = pdf(&[lines(&["Hello"])]);
    assert_eq!(Format::detect("report.txt", &pdf_bytes), Ok(Format::Pdf));
    let docx_bytes = docx(&[DocxBlock::Paragraph("Hi".into())]);
    assert_eq!(Format::detect("noname", &docx_bytes), Ok(Format::Docx));
    assert_eq!(Format::detect("page.HTM", b"<p>x</p>"), Ok(Format::Html));
    assert_eq!(
        Format::detect("notes", b"<!DOCTYPE html><p>x</p>"),
        Ok(Format::Html)
    );
    assert_eq!(Format::detect("a.md", b"# x"), Ok(Format::Markdown));
    assert_eq!(Format::detect("a.csv", b"a,b"), Ok(Format::Csv));
    assert_eq!(Format::detect("a.json", b"{}"), Ok(Format::Json));
    let error = Format::detect("scan.pdf", b"not a pdf").unwrap_err();
    assert_eq!(error.code(), "corrupt_file");
    assert_eq!(
        Format::detect("tool.exe", b"MZ\0\0\x90").unwrap_err().code(),
        "unsupported_type"
    );
    let mut other_zip = Vec::new();
    {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut other_zip));
        zip.start_file("a.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"x").unwrap();
        zip.finish().unwrap();
    }
    assert_eq!(
        Format::detect("a.zip", &other_zip).unwrap_err().code(),
        "unsupported_type"
    );
}

#[test]
fn pdf_pages_keep_their_numbers_headings_and_paragraphs() {
    let bytes = pdf(&[
        lines(&[
            "Annual leave",
            "Every employee has twenty-five days of annual",
            "leave per calendar year.",
            "",
            "Unused days may be carried over.",
        ]),
        lines(&[
            "Télétravail",
            "Les agents peuvent télétravailler deux jours",
            "par semaine.",
            "",
            "• first item",
            "• second item",
        ]),
    ]);
    let extracted = extract(Format::Pdf, &bytes, &Limits::default()).unwrap();
    assert_eq!(extracted.pages, Some(2));
    let blocks = &extracted.blocks;
    assert_eq!(blocks[0].kind, BlockKind::Heading(2));
    assert_eq!(blocks[0].text, "Annual leave");
    assert_eq!(
        blocks[1].text,
        "Every employee has twenty-five days of annual leave per calendar year."
    );
    assert_eq!(blocks[1].page, Some(1));
    assert_eq!(blocks[2].text, "Unused days may be carried over.");
    let french = blocks
        .iter()
        .find(|block| block.text.starts_with("Les agents"))
        .unwrap();
    assert_eq!(
        french.text,
        "Les agents peuvent télétravailler deux jours par semaine."
    );
    assert_eq!(french.page, Some(2));
    assert!(blocks
        .iter()
        .any(|block| block.kind == BlockKind::ListItem && block.text == "second item"));
}

#[test]
fn pdfs_without_text_encrypted_or_damaged_are_refused_with_their_reason() {
    let scanned = pdf(&[vec![], vec![]]);
    assert_eq!(
        extract(Format::Pdf, &scanned, &Limits::default()).unwrap_err(),
        ExtractError::Scanned
    );

    let mut document = lopdf::Document::load_mem(&pdf(&[lines(&["secret"])])).unwrap();
    let encrypt = document.add_object(dictionary! {
        "Filter" => "Standard", "V" => 2, "R" => 3, "Length" => 128,
        "O" => lopdf::Object::string_literal(vec![1u8; 32]),
        "U" => lopdf::Object::string_literal(vec![2u8; 32]),
        "P" => -3904,
    });
    document.trailer.set("Encrypt", encrypt);
    document.trailer.set(
        "ID",
        vec![
            lopdf::Object::string_literal(vec![3u8; 16]),
            lopdf::Object::string_literal(vec![3u8; 16]),
        ],
    );
    let mut encrypted = Vec::new();
    document.save_to(&mut encrypted).unwrap();
    assert_eq!(
        extract(Format::Pdf, &encrypted, &Limits::default()).unwrap_err(),
        ExtractError::Encrypted
    );

    let mut truncated = pdf(&[lines(&["Hello"])]);
    truncated.truncate(40);
    assert_eq!(
        extract(Format::Pdf, &truncated, &Limits::default())
            .unwrap_err()
            .code(),
        "corrupt_file"
    );

    let many = pdf(&vec![lines(&["page"]); 5]);
    let limits = Limits {
        max_pages: 4,
        ..Limits::default()
    };
    assert_eq!(
        extract(Format::Pdf, &many, &limits).unwrap_err(),
        ExtractError::TooManyPages { pages: 5, limit: 4 }
    );
    let limits = Limits {
        max_file_bytes: 10,
        ..Limits::default()
    };
    assert_eq!(
        extract(Format::Pdf, &many, &limits).unwrap_err().code(),
        "file_too_large"
    );
}

#[test]
fn docx_headings_lists_and_tables_survive() {
    let bytes = docx(&[
        DocxBlock::Heading(1, "Travel policy".into()),
        DocxBlock::Paragraph("Mileage is paid at 0.58 per kilometre & tolls <too>.".into()),
        DocxBlock::ListItem("Book through the travel desk".into()),
        DocxBlock::Table(vec![
            vec!["Grade".into(), "Per diem".into()],
            vec!["A".into(), "95".into()],
        ]),
        DocxBlock::Heading(2, "Approval".into()),
    ]);
    let extracted = extract(Format::Docx, &bytes, &Limits::default()).unwrap();
    assert_eq!(
        kinds(&extracted),
        vec![
            (BlockKind::Heading(1), "Travel policy"),
            (
                BlockKind::Paragraph,
                "Mileage is paid at 0.58 per kilometre & tolls <too>."
            ),
            (BlockKind::ListItem, "Book through the travel desk"),
            (BlockKind::Table, "Grade | Per diem\nA | 95"),
            (BlockKind::Heading(2), "Approval"),
        ]
    );
    assert_eq!(extracted.title.as_deref(), Some("Travel policy"));
}

#[test]
fn a_docx_that_inflates_past_the_limit_is_a_bomb() {
    let big = "All work and no play. ".repeat(20_000);
    let bytes = docx(&[DocxBlock::Paragraph(big)]);
    assert!(bytes.len() < 50_000, "compresses well: {}", bytes.len());
    let limits = Limits {
        max_decompressed_bytes: 100_000,
        ..Limits::default()
    };
    assert_eq!(
        extract(Format::Docx, &bytes, &limits).unwrap_err(),
        ExtractError::Decompression { limit: 100_000 }
    );
    assert!(extract(Format::Docx, &bytes, &Limits::default()).is_ok());
    let mut damaged = bytes.clone();
    damaged.truncate(bytes.len() / 2);
    assert_eq!(
        extract(Format::Docx, &damaged, &Limits::default())
            .unwrap_err()
            .code(),
        "corrupt_file"
    );
}

#[test]
fn html_keeps_structure_and_drops_scripts_styles_and_navigation() {
    let html = r#"<!DOCTYPE html><html><head><title>Leave &amp; absence</title><style>p{}</style></head>
        <body><nav><a href="/">Home</a> menu</nav>
        <h1>Leave</h1><p>Staff get <b>25</b>&nbsp;days &lt;annual&gt; — caf&eacute; &#233;t&#xE9;.</p>
        <script>if (a < b) { document.write("<p>no</p>") }</script>
        <ul><li>Ask your manager</li><li>Use form HR-27</li></ul>
        <table><tr><th>Type</th><th>Days</th></tr><tr><td>Annual</td><td>25</td></tr></table>
        <!-- a comment <p>hidden</p> -->
        <p>After 3 < 4 comparisons</p></body></html>"#;
    let extracted = extract(Format::Html, html.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(extracted.title.as_deref(), Some("Leave & absence"));
    assert_eq!(
        kinds(&extracted),
        vec![
            (BlockKind::Heading(1), "Leave"),
            (BlockKind::Paragraph, "Staff get 25 days <annual> — café été."),
            (BlockKind::ListItem, "Ask your manager"),
            (BlockKind::ListItem, "Use form HR-27"),
            (BlockKind::Table, "Type | Days\nAnnual | 25"),
            (BlockKind::Paragraph, "After 3 < 4 comparisons"),
        ]
    );
}

#[test]
fn markdown_text_csv_and_json_become_blocks() {
    let markdown = "# Records\n\nKeep files for **seven** years.\n\n- paper\n- digital\n\n| Kind | Years |\n|---|---|\n| Case | 7 |\n";
    let extracted = extract(Format::Markdown, markdown.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        kinds(&extracted),
        vec![
            (BlockKind::Heading(1), "Records"),
            (BlockKind::Paragraph, "Keep files for seven years."),
            (BlockKind::ListItem, "paper"),
            (BlockKind::ListItem, "digital"),
            (BlockKind::Table, "Kind | Years\nCase | 7"),
        ]
    );
    let underlined = "Grant notice\n============\n\n1. Purpose\n----------\n\nIt helps libraries.\n";
    let extracted = extract(Format::Text, underlined.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        kinds(&extracted),
        vec![
            (BlockKind::Heading(1), "Grant notice"),
            (BlockKind::Heading(2), "1. Purpose"),
            (BlockKind::Paragraph, "It helps libraries.")
        ]
    );
    let text = "First line\ncontinues.\n\n- item\n\nLast.";
    let extracted = extract(Format::Text, text.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        kinds(&extracted),
        vec![
            (BlockKind::Paragraph, "First line continues."),
            (BlockKind::ListItem, "item"),
            (BlockKind::Paragraph, "Last.")
        ]
    );
    let csv = "office;city;phone\nNorth;Lille;03 20 00 00 00\nSouth;\"Nice, centre\";04 93 00 00 00\n";
    let extracted = extract(Format::Csv, csv.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        kinds(&extracted),
        vec![(
            BlockKind::Table,
            "office | city | phone\nNorth | Lille | 03 20 00 00 00\nSouth | Nice, centre | 04 93 00 00 00"
        )]
    );
    // Windows-1252 is read as such.
    let latin = b"nom,ville\nA,Orl\xe9ans\n";
    let extracted = extract(Format::Csv, latin, &Limits::default()).unwrap();
    assert!(extracted.blocks[0].text.contains("Orléans"));
    let json =
        r#"[{"code": "P-1", "budget": 1200, "contact": {"office": "North"}}, {"code": "P-2", "open": true}]"#;
    let extracted = extract(Format::Json, json.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        kinds(&extracted),
        vec![
            (
                BlockKind::Paragraph,
                "[0].code: P-1\n[0].budget: 1200\n[0].contact.office: North"
            ),
            (BlockKind::Paragraph, "[1].code: P-2\n[1].open: true"),
        ]
    );
    assert_eq!(
        extract(Format::Json, b"{oops", &Limits::default())
            .unwrap_err()
            .code(),
        "corrupt_file"
    );
    assert_eq!(
        extract(Format::Text, b"  \n\n ", &Limits::default()).unwrap_err(),
        ExtractError::Empty
    );
}

#[test]
fn hostile_bytes_never_panic() {
    let seeds: Vec<Vec<u8>> = vec![
        pdf(&[lines(&["Hello world", "", "Second"])]),
        docx(&[
            DocxBlock::Heading(1, "T".into()),
            DocxBlock::Paragraph("x".into()),
        ]),
        b"<html><p>a<b>c</p><table><tr><td>x".to_vec(),
        b"# h\n|a|b|\n|-|-|\n|1|".to_vec(),
    ];
    // Deterministic corruption: flip, cut and repeat bytes.
    let mut state: u32 = 7;
    for seed in &seeds {
        for round in 0..200 {
            let mut bytes = seed.clone();
            for _ in 0..(round % 7 + 1) {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let at = (state as usize >> 8) % bytes.len().max(1);
                if let Some(byte) = bytes.get_mut(at) {
                    *byte ^= (state >> 16) as u8;
                }
            }
            if round % 3 == 0 {
                let cut = (state as usize) % bytes.len().max(1);
                bytes.truncate(cut);
            }
            for format in [
                Format::Pdf,
                Format::Docx,
                Format::Html,
                Format::Markdown,
                Format::Csv,
                Format::Json,
                Format::Text,
            ] {
                let _ = extract(format, &bytes, &Limits::default());
            }
            let _ = Format::detect("x", &bytes);
        }
    }
}
