//! Rendered PDFs read back the way a person's viewer would: poppler's `pdftotext`, `pdfinfo` and
//! `pdffonts` (package poppler-utils, which .ci/run installs) see the text, the pages and the
//! fonts of the file, not of our layout model.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;
use documents::{
    format_money, DocumentKind, DocumentLine, InvoiceDocument, Party, RenderError, Renderer,
};
use sha2::{Digest, Sha256};

fn day(text: &str) -> NaiveDate {
    text.parse().expect("a test date")
}

fn line(description: &str, quantity: i64, unit_amount_cents: i64) -> DocumentLine {
    DocumentLine {
        description: description.to_owned(),
        quantity,
        unit_amount_cents,
        amount_cents: quantity * unit_amount_cents,
        period: None,
    }
}

const LONG_DESCRIPTION: &str = "API calls beyond the included credits, metered in arrears for \
    the period, including the overage from the migration weekend and the profile fine-tuning";

/// A paid invoice with every field filled, names that are not ASCII, and a wrapped line.
fn paid_invoice() -> InvoiceDocument {
    let mut lines = vec![
        DocumentLine {
            period: Some((day("2026-03-01"), day("2026-03-31"))),
            ..line("Pro plan", 1, 2_900)
        },
        line("Seats", 12, 1_000),
        line(LONG_DESCRIPTION, 4_375, 2),
        line("Onboarding workshop in İstanbul", 1, 108_300),
    ];
    lines[1].period = Some((day("2026-03-01"), day("2026-03-31")));
    let total = lines.iter().map(|line| line.amount_cents).sum();
    InvoiceDocument {
        merchant_name: "Acme Cloud GmbH".to_owned(),
        document_type: DocumentKind::Invoice,
        number: "INV-0001".to_owned(),
        currency: "USD".to_owned(),
        customer: Party {
            name: Some("Zoë Łukasiewicz".to_owned()),
            email: Some("zoe@example.com".to_owned()),
            address_lines: vec!["Strandvej 1".to_owned(), "5970 Ærøskøbing".to_owned()],
            tax_id: Some("DK12345678".to_owned()),
        },
        issue_date: day("2026-03-01"),
        due_date: Some(day("2026-03-15")),
        paid_date: Some(day("2026-03-02")),
        period: Some((day("2026-03-01"), day("2026-03-31"))),
        lines,
        subtotal_cents: total,
        total_cents: total,
        amount_paid_cents: total,
        amount_due_cents: 0,
        original_number: None,
        note: None,
    }
}

fn credit_note() -> InvoiceDocument {
    let lines = vec![line("Credit for INV-0001: unused seats", 1, -1_000)];
    InvoiceDocument {
        merchant_name: "Acme Cloud GmbH".to_owned(),
        document_type: DocumentKind::CreditNote,
        number: "CN-0001".to_owned(),
        currency: "EUR".to_owned(),
        customer: Party {
            name: Some("Zoë Łukasiewicz".to_owned()),
            ..Party::default()
        },
        issue_date: day("2026-03-20"),
        due_date: None,
        paid_date: None,
        period: None,
        lines,
        subtotal_cents: -1_000,
        total_cents: -1_000,
        amount_paid_cents: 0,
        amount_due_cents: -1_000,
        original_number: Some("INV-0001".to_owned()),
        note: Some("Two seats were removed in the first week.".to_owned()),
    }
}

/// Installs poppler with the project's own `.ci/test-deps` the first time it is missing, so
/// that `cargo test --workspace` on a fresh machine needs no other command.
fn install_poppler_once() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        if Command::new("pdftotext").arg("-v").output().is_ok() {
            return;
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/test-deps");
        let status = Command::new("bash").arg(&script).status();
        if !matches!(status, Ok(status) if status.success()) {
            eprintln!("{} failed: {status:?}", script.display());
        }
    });
}

/// Runs a poppler tool on the PDF and returns what it printed. A missing tool fails the test:
/// these checks are the only ones that read the file as a viewer does, so they never skip.
fn poppler(tool: &str, pdf: &[u8], options: &[&str], after_file: &[&str]) -> String {
    String::from_utf8(poppler_bytes(tool, pdf, options, after_file)).expect("poppler prints UTF-8")
}

/// What a poppler tool printed, as bytes (`pdftoppm` prints images).
fn poppler_bytes(tool: &str, pdf: &[u8], options: &[&str], after_file: &[&str]) -> Vec<u8> {
    install_poppler_once();
    static FILES: AtomicUsize = AtomicUsize::new(0);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "documents-{}-{}.pdf",
        std::process::id(),
        FILES.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, pdf).expect("the PDF is written to the test's temporary folder");
    let output = Command::new(tool)
        .args(options)
        .arg(&path)
        .args(after_file)
        .output();
    let _ = std::fs::remove_file(&path);
    let output = output.unwrap_or_else(|error| {
        panic!(
            "{tool} could not be run ({error}): install poppler-utils \
             (apt-get install -y poppler-utils); .ci/run does this on CI"
        )
    });
    assert!(
        output.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn text_of(pdf: &[u8]) -> String {
    poppler("pdftotext", pdf, &["-enc", "UTF-8"], &["-"])
}

fn page_count(pdf: &[u8]) -> usize {
    let info = poppler("pdfinfo", pdf, &[], &[]);
    info.lines()
        .find_map(|line| line.strip_prefix("Pages:"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("pdfinfo printed no page count:\n{info}"))
}

fn assert_shows(text: &str, expected: &str) {
    assert!(
        text.contains(expected),
        "the PDF's text lacks {expected:?}; pdftotext read:\n{text}"
    );
}

/// Every renderer a document can record: each goes on drawing the documents it drew.
const RENDERERS: [Renderer; 2] = [Renderer::KrillaSubsets, Renderer::SharedSubsets];

/// The document as issued now.
fn render(document: &InvoiceDocument) -> Result<Vec<u8>, RenderError> {
    documents::render(document, Renderer::CURRENT)
}

/// Page `page` of the PDF as poppler draws it: a grey-scale raster at 100 dpi, one byte a
/// pixel (`pdftoppm -gray` prints a PGM: a text header of three lines, then the pixels).
fn raster(pdf: &[u8], page: usize) -> (String, Vec<u8>) {
    let page = page.to_string();
    let image = poppler_bytes(
        "pdftoppm",
        pdf,
        &["-gray", "-r", "100", "-f", &page, "-l", &page],
        &[],
    );
    let mut header_end = 0;
    for _ in 0..3 {
        header_end += image[header_end..]
            .iter()
            .position(|byte| *byte == b'\n')
            .expect("a PGM header line")
            + 1;
    }
    let header = String::from_utf8_lossy(&image[..header_end]).into_owned();
    (header, image[header_end..].to_vec())
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn an_invoice_shows_everything_its_customer_reads() {
    for renderer in RENDERERS {
        invoice_shows_everything_its_customer_reads(renderer);
    }
}

fn invoice_shows_everything_its_customer_reads(renderer: Renderer) {
    let document = paid_invoice();
    let text = text_of(&documents::render(&document, renderer).unwrap());

    for expected in [
        "Acme Cloud GmbH",
        "Invoice",
        "INV-0001",
        "Zoë Łukasiewicz",
        "zoe@example.com",
        "Strandvej 1",
        "5970 Ærøskøbing",
        "Tax ID: DK12345678",
        "Issue date",
        "2026-03-01",
        "Due date",
        "2026-03-15",
        "2026-03-01 – 2026-03-31",
        "Paid on 2026-03-02",
        "Subtotal",
        "Total",
        "Amount paid",
        "Amount due",
        "$0.00",
    ] {
        assert_shows(&text, expected);
    }
    for line in &document.lines {
        if line.description != LONG_DESCRIPTION {
            assert_shows(&text, &line.description);
        }
        assert_shows(&text, &format_money(line.amount_cents, "USD"));
    }
    assert_eq!(format_money(document.total_cents, "USD"), "$1,319.50");
    assert_shows(&text, "$1,319.50");
}

#[test]
fn a_long_description_is_wrapped_with_none_of_its_words_lost() {
    let text = text_of(&render(&paid_invoice()).unwrap());
    let flowing = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flowing.contains(LONG_DESCRIPTION),
        "the wrapped description does not read back whole:\n{text}"
    );
    // Wrapped, not one line running off the page.
    let first_words = "API calls beyond the included credits,";
    let line_with_start = text
        .lines()
        .find(|line| line.contains(first_words))
        .unwrap();
    assert!(
        !line_with_start.contains("migration weekend"),
        "{line_with_start}"
    );
}

#[test]
fn an_unpaid_invoice_does_not_say_paid() {
    let document = InvoiceDocument {
        paid_date: None,
        amount_paid_cents: 0,
        ..paid_invoice()
    };
    let text = text_of(&render(&document).unwrap());
    assert!(!text.contains("Paid on"), "{text}");
    assert_shows(&text, "INV-0001");
}

#[test]
fn a_credit_note_shows_its_title_and_the_invoice_it_corrects() {
    let text = text_of(&render(&credit_note()).unwrap());
    for expected in [
        "Credit note",
        "CN-0001",
        "Corrects INV-0001",
        "Zoë Łukasiewicz",
        "Credit for INV-0001: unused seats",
        "-€10.00",
        "Two seats were removed in the first week.",
    ] {
        assert_shows(&text, expected);
    }
    assert!(
        !text.contains("Invoice CN-0001"),
        "a credit note is not titled Invoice"
    );
}

#[test]
fn a_cancellation_is_titled_as_one_and_names_the_original() {
    let document = InvoiceDocument {
        document_type: DocumentKind::Cancellation,
        number: "CAN-0001".to_owned(),
        note: None,
        ..credit_note()
    };
    let text = text_of(&render(&document).unwrap());
    for expected in ["Cancellation", "CAN-0001", "Corrects INV-0001"] {
        assert_shows(&text, expected);
    }
    assert!(!text.contains("Credit note"), "{text}");
}

#[test]
fn amounts_follow_their_currency() {
    let yen = InvoiceDocument {
        currency: "JPY".to_owned(),
        lines: vec![line("Starter plan", 1, 5_000)],
        subtotal_cents: 5_000,
        total_cents: 5_000,
        amount_paid_cents: 5_000,
        amount_due_cents: 0,
        ..paid_invoice()
    };
    let text = text_of(&render(&yen).unwrap());
    assert_shows(&text, "¥5,000");
    assert!(!text.contains("¥5,000.00") && !text.contains('$'), "{text}");

    let dinar = InvoiceDocument {
        currency: "KWD".to_owned(),
        ..yen
    };
    assert_shows(&text_of(&render(&dinar).unwrap()), "5.000 KWD");
}

#[test]
fn two_hundred_lines_flow_onto_further_pages_and_every_one_is_there() {
    let lines: Vec<DocumentLine> = (1..=200)
        .map(|n| line(&format!("Usage item {n:03} Łódź"), n, 100))
        .collect();
    let total = lines.iter().map(|line| line.amount_cents).sum();
    let document = InvoiceDocument {
        lines,
        subtotal_cents: total,
        total_cents: total,
        amount_paid_cents: total,
        ..paid_invoice()
    };
    let pdf = render(&document).unwrap();

    let pages = page_count(&pdf);
    assert!(pages > 1, "200 lines on {pages} page");
    let text = text_of(&pdf);
    for n in 1..=200 {
        assert_shows(&text, &format!("Usage item {n:03} Łódź"));
    }
    assert_shows(&text, &format_money(total, "USD"));
    assert_shows(
        &text,
        &format!("Invoice INV-0001 · Page {pages} of {pages}"),
    );
    assert_shows(&text, "Invoice INV-0001 (continued)");
}

#[test]
fn every_font_is_embedded_in_the_file() {
    for renderer in RENDERERS {
        every_font_is_embedded(&documents::render(&paid_invoice(), renderer).unwrap());
    }
}

fn every_font_is_embedded(pdf: &[u8]) {
    let fonts = poppler("pdffonts", pdf, &[], &[]);
    // After two header lines, one row per font: name, type, encoding, emb, sub, uni, id.
    let rows: Vec<&str> = fonts
        .lines()
        .skip(2)
        .filter(|row| !row.trim().is_empty())
        .collect();
    assert!(!rows.is_empty(), "no font listed:\n{fonts}");
    for row in rows {
        let columns: Vec<&str> = row.split_whitespace().collect();
        let embedded = columns[columns.len() - 5];
        assert_eq!(embedded, "yes", "a font is not embedded:\n{fonts}");
        assert!(
            row.contains("DejaVuSans"),
            "a font other than the bundled ones:\n{fonts}"
        );
    }
}

#[test]
fn the_file_carries_no_creation_or_modification_date() {
    for renderer in RENDERERS {
        let pdf = documents::render(&paid_invoice(), renderer).unwrap();
        let info = poppler("pdfinfo", &pdf, &[], &[]);
        assert!(!info.contains("CreationDate"), "{info}");
        assert!(!info.contains("ModDate"), "{info}");
        assert!(
            info.contains("Invoice INV-0001"),
            "the title is set:\n{info}"
        );
    }
}

#[test]
fn the_same_document_gives_the_same_bytes() {
    let first = render(&paid_invoice()).unwrap();
    // Built anew, field by field, so nothing is shared with the first render but the code.
    let second = render(&paid_invoice()).unwrap();
    assert!(first == second, "two renders of one document differ");

    let long: Vec<DocumentLine> = (0..120).map(|n| line(&format!("Row {n}"), 1, 1)).collect();
    let many = || InvoiceDocument {
        lines: long.clone(),
        ..credit_note()
    };
    assert_eq!(
        sha256(&render(&many()).unwrap()),
        sha256(&render(&many()).unwrap())
    );
}

/// Set in the child process the test below starts: it then prints its hash instead.
const CHILD: &str = "DOCUMENTS_TEST_PRINT_HASH";

/// Another process has other hash seeds, addresses and allocation order: anything of that kind
/// that leaked into the file would show here even if it is stable within one process.
#[test]
fn the_same_document_gives_the_same_bytes_in_another_process() {
    let here: Vec<String> = RENDERERS
        .iter()
        .map(|renderer| sha256(&documents::render(&paid_invoice(), *renderer).unwrap()))
        .collect();
    let here = here.join(",");
    if std::env::var_os(CHILD).is_some() {
        println!("paid invoice sha256={here}");
        return;
    }
    let output = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([
            "--exact",
            "the_same_document_gives_the_same_bytes_in_another_process",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the child failed:\n{stdout}");
    let there = stdout
        .lines()
        .find_map(|line| line.strip_prefix("paid invoice sha256="))
        .unwrap_or_else(|| panic!("the child printed no hash:\n{stdout}"));
    assert_eq!(here, there);
}

#[test]
fn a_changed_document_gives_different_bytes() {
    let original = render(&paid_invoice()).unwrap();

    let mut changed_line = paid_invoice();
    changed_line.lines[1].description = "Seat".to_owned();
    assert!(
        render(&changed_line).unwrap() != original,
        "a line's description changed"
    );

    let mut changed_amount = paid_invoice();
    changed_amount.lines[0].amount_cents += 1;
    assert!(
        render(&changed_amount).unwrap() != original,
        "a line's amount changed"
    );

    let unpaid = InvoiceDocument {
        paid_date: None,
        ..paid_invoice()
    };
    assert!(
        render(&unpaid).unwrap() != original,
        "the paid date went away"
    );
}

/// The digest of `paid_invoice()` as each renderer has drawn it since it first drew issued
/// documents. Every issued document's digest is in the log, and a download renders the
/// document again and refuses bytes that differ: a change of layout, font, shaping or
/// compression (a crate upgrade included) would make every earlier document unreadable. Such
/// a change needs a renderer of its own (`Renderer`), not a new value here.
const PAID_INVOICE_SHA256: [(Renderer, &str); 2] = [
    (
        Renderer::KrillaSubsets,
        "ce8f14b35b814f6e347b54af8fc27aeafba589dfdacaebd675cf55af4a16473a",
    ),
    (
        Renderer::SharedSubsets,
        "2982e25fd7bd9a6015c2388f4b009993bc30f9e340a5ec6c50692897cec82768",
    ),
];

#[test]
fn documents_render_as_they_rendered_when_issued() {
    for (renderer, digest) in PAID_INVOICE_SHA256 {
        assert_eq!(
            sha256(&documents::render(&paid_invoice(), renderer).unwrap()),
            digest,
            "{renderer:?}"
        );
    }
}

/// A renderer is a way of writing a file, not a look: every renderer draws a document's pages
/// alike, to the pixel as poppler draws them (anti-aliasing aside), kerning, marks placed on
/// their letters, colours and rules included.
#[test]
fn every_renderer_draws_the_same_pages() {
    let marks = InvoiceDocument {
        customer: Party {
            // Letters with marks no font has a glyph for (placed by shaping: "x̣́", "q̇"),
            // Greek and Cyrillic (outside the shared subsets), kerned pairs ("AV", "To").
            name: Some(
                "Ŗo\u{0301}sa x\u{0323}\u{0301} q\u{0307} Γιώργος Анна AVATAR To".to_owned(),
            ),
            ..paid_invoice().customer
        },
        ..credit_note()
    };
    let long = InvoiceDocument {
        lines: (1..=60)
            .map(|n| line(&format!("Row {n} Łódź"), n, 100))
            .collect(),
        ..paid_invoice()
    };
    for document in [paid_invoice(), credit_note(), marks, long] {
        let first = documents::render(&document, RENDERERS[0]).unwrap();
        let pages = page_count(&first);
        for renderer in &RENDERERS[1..] {
            let other = documents::render(&document, *renderer).unwrap();
            assert_eq!(page_count(&other), pages, "{renderer:?}");
            for page in 1..=pages {
                let (header, expected) = raster(&first, page);
                let (other_header, drawn) = raster(&other, page);
                assert_eq!(header, other_header);
                let differing = expected
                    .iter()
                    .zip(&drawn)
                    .filter(|(a, b)| a.abs_diff(**b) > 48)
                    .count();
                assert_eq!(
                    differing, 0,
                    "{renderer:?} draws page {page} of {} differently",
                    document.number
                );
            }
        }
    }
}

/// Text beyond the shared subsets (Greek, Cyrillic) is embedded in a subset of the
/// document's own, and reads back as written.
#[test]
fn a_name_beyond_the_shared_fonts_reads_back_whole() {
    let document = InvoiceDocument {
        customer: Party {
            name: Some("Γιώργος Παπαδόπουλος".to_owned()),
            address_lines: vec!["ул. Тверская, 7".to_owned(), "Москва".to_owned()],
            ..paid_invoice().customer
        },
        ..paid_invoice()
    };
    for renderer in RENDERERS {
        let pdf = documents::render(&document, renderer).unwrap();
        let text = text_of(&pdf);
        for expected in ["Γιώργος Παπαδόπουλος", "ул. Тверская, 7", "Москва", "Zoë"]
        {
            if expected == "Zoë" {
                assert!(!text.contains(expected), "{renderer:?}: {text}");
            } else {
                assert_shows(&text, expected);
            }
        }
        every_font_is_embedded(&pdf);
        assert!(pdf == documents::render(&document, renderer).unwrap());
    }
    // The subset made for it is its own: a plain document's file differs in its fonts.
    let plain = render(&paid_invoice()).unwrap();
    let own = render(&document).unwrap();
    let font_names = |pdf: &[u8]| poppler("pdffonts", pdf, &[], &[]);
    assert!(font_names(&plain) != font_names(&own));
}

/// A mark that shaping places on its letter is a glyph of its own, and copies as that mark:
/// the letter and its marks read back as written, each once (not the whole cluster once per
/// glyph).
#[test]
fn letters_with_marks_placed_by_shaping_read_back_as_written() {
    let document = InvoiceDocument {
        customer: Party {
            name: Some("Ṃax q\u{0307}uill x\u{0323}\u{0301}ylo".to_owned()),
            ..paid_invoice().customer
        },
        ..paid_invoice()
    };
    for renderer in RENDERERS {
        let text = text_of(&documents::render(&document, renderer).unwrap());
        // pdftotext may see a space after a glyph placed on its own; the characters are what
        // matter, each once.
        let unspaced: String = text.split_whitespace().collect();
        assert!(
            unspaced.contains("Ṃaxq\u{0307}uillx\u{0323}\u{0301}ylo"),
            "{renderer:?}: {text}"
        );
    }
}
