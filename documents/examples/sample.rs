//! Writes a sample invoice to a file, to look at the layout, and prints how long a render
//! takes with each renderer (the mean of 200; measure in release):
//! `cargo run --release -p documents --example sample -- /tmp/invoice.pdf [lines]`.
//! The file is drawn by the current renderer; renderer 1's goes next to it (`….1.pdf`).

use chrono::NaiveDate;
use documents::{render, DocumentKind, DocumentLine, InvoiceDocument, Party, Renderer};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "invoice.pdf".to_owned());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);
    let day = |text: &str| text.parse::<NaiveDate>().expect("a date");

    let mut lines = vec![
        DocumentLine {
            description: "Pro plan".to_owned(),
            quantity: 1,
            unit_amount_cents: 2_900,
            amount_cents: 2_900,
            period: Some((day("2026-03-01"), day("2026-03-31"))),
        },
        DocumentLine {
            description: "Seats".to_owned(),
            quantity: 12,
            unit_amount_cents: 1_000,
            amount_cents: 12_000,
            period: Some((day("2026-03-01"), day("2026-03-31"))),
        },
        DocumentLine {
            description: "API calls beyond the included credits, metered in arrears for the \
                          period, including the overage from the migration weekend"
                .to_owned(),
            quantity: 4_375,
            unit_amount_cents: 2,
            amount_cents: 8_750,
            period: None,
        },
    ];
    for n in lines.len()..count {
        lines.push(DocumentLine {
            description: format!("Extra line {n}"),
            quantity: 1,
            unit_amount_cents: 100,
            amount_cents: 100,
            period: None,
        });
    }
    let total: i64 = lines.iter().map(|line| line.amount_cents).sum();
    let document = InvoiceDocument {
        merchant_name: "Acme Cloud GmbH".to_owned(),
        document_type: DocumentKind::Invoice,
        number: "INV-0001".to_owned(),
        currency: "EUR".to_owned(),
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
        note: Some("Thank you for your business.".to_owned()),
    };
    for renderer in [Renderer::KrillaSubsets, Renderer::SharedSubsets] {
        let bytes = render(&document, renderer).expect("the sample renders");
        const RUNS: u32 = 200;
        let started = std::time::Instant::now();
        for _ in 0..RUNS {
            let document = std::hint::black_box(&document);
            std::hint::black_box(render(document, renderer).expect("renders"));
        }
        let each = started.elapsed() / RUNS;
        let path = match renderer == Renderer::CURRENT {
            true => path.clone(),
            false => path.replace(".pdf", &format!(".{}.pdf", renderer.number())),
        };
        println!(
            "renderer {}: {path}: {} bytes, rendered in {each:?} (mean of {RUNS})",
            renderer.number(),
            bytes.len()
        );
        std::fs::write(&path, bytes).expect("the PDF is written");
    }
}
