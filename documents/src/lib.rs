//! Invoice PDFs. A document goes in, as plain values the caller has already read and formatted
//! the names of; a PDF comes out. No I/O: the fonts (DejaVu Sans and Sans Bold) are compiled
//! in and embedded as subsets, nothing is read from the system or the network.
//!
//! The same document always gives the same bytes, so a download can carry a stable ETag: the
//! PDF holds no creation date and no random id, and the layout is plain arithmetic on the
//! document's own values.

mod layout;
mod lean_pdf;
mod money;
mod pdf;
mod renderer;
mod shared_subset;
mod text;

use std::sync::OnceLock;

use chrono::NaiveDate;

pub use money::format_money;
pub use renderer::Renderer;

/// Everything an invoice, a cancellation or a credit note shows. (Hashable: a caller may
/// remember what a document rendered to.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InvoiceDocument {
    pub merchant_name: String,
    pub document_type: DocumentKind,
    /// `INV-0001`, `CAN-0001`, `CN-0001`.
    pub number: String,
    /// ISO 4217: `USD`, `EUR`, `JPY`. Every amount below is in its minor units.
    pub currency: String,
    pub customer: Party,
    pub issue_date: NaiveDate,
    pub due_date: Option<NaiveDate>,
    /// Shown as "Paid on 2026-03-02" when set.
    pub paid_date: Option<NaiveDate>,
    /// The billing period, first and last day.
    pub period: Option<(NaiveDate, NaiveDate)>,
    pub lines: Vec<DocumentLine>,
    pub subtotal_cents: i64,
    pub total_cents: i64,
    pub amount_paid_cents: i64,
    pub amount_due_cents: i64,
    /// On a cancellation or a credit note, the number of the invoice it corrects: shown as
    /// "Corrects INV-0001".
    pub original_number: Option<String>,
    /// Free text under the totals, such as a credit note's reason.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    Invoice,
    Cancellation,
    CreditNote,
}

impl DocumentKind {
    /// The document's title as printed: "Invoice", "Cancellation", "Credit note".
    pub fn title(self) -> &'static str {
        match self {
            DocumentKind::Invoice => "Invoice",
            DocumentKind::Cancellation => "Cancellation",
            DocumentKind::CreditNote => "Credit note",
        }
    }
}

/// Who the document is addressed to. A field left empty is left out of the PDF.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Party {
    pub name: Option<String>,
    pub email: Option<String>,
    /// The billing address, one printed line each.
    pub address_lines: Vec<String>,
    pub tax_id: Option<String>,
}

/// One billed line. A description is wrapped to its column and cut with "…" past twelve
/// lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentLine {
    pub description: String,
    pub quantity: i64,
    pub unit_amount_cents: i64,
    pub amount_cents: i64,
    pub period: Option<(NaiveDate, NaiveDate)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// krilla refused to write the file. With the bundled fonts and no validator this is not
    /// expected; it is returned rather than panicking so a server answers 500 and goes on.
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
}

/// The document as a PDF on A4 pages, drawn by `renderer`. The same document and renderer
/// give the same bytes.
pub fn render(document: &InvoiceDocument, renderer: Renderer) -> Result<Vec<u8>, RenderError> {
    // Parsing the two fonts is a good part of a render's time, and they never change.
    static FONTS: OnceLock<text::Fonts> = OnceLock::new();
    let fonts = FONTS.get_or_init(text::Fonts::new);
    let pages = layout::compose(document, fonts);
    let title = format!("{} {}", document.document_type.title(), document.number);
    match renderer {
        Renderer::KrillaSubsets => {
            pdf::write(&pages, fonts, title).map_err(|error| RenderError::Pdf(error.to_string()))
        }
        Renderer::SharedSubsets => Ok(lean_pdf::write(&pages, fonts, &title)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn day(text: &str) -> NaiveDate {
        text.parse().expect("a test date")
    }

    pub(crate) fn line(description: &str, amount_cents: i64) -> DocumentLine {
        DocumentLine {
            description: description.to_owned(),
            quantity: 1,
            unit_amount_cents: amount_cents,
            amount_cents,
            period: None,
        }
    }

    pub(crate) fn sample() -> InvoiceDocument {
        InvoiceDocument {
            merchant_name: "Acme Cloud".to_owned(),
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
            paid_date: None,
            period: Some((day("2026-03-01"), day("2026-03-31"))),
            lines: vec![line("Pro plan", 2_900)],
            subtotal_cents: 2_900,
            total_cents: 2_900,
            amount_paid_cents: 0,
            amount_due_cents: 2_900,
            original_number: None,
            note: None,
        }
    }

    #[test]
    fn each_kind_has_its_printed_title() {
        assert_eq!(DocumentKind::Invoice.title(), "Invoice");
        assert_eq!(DocumentKind::Cancellation.title(), "Cancellation");
        assert_eq!(DocumentKind::CreditNote.title(), "Credit note");
    }

    #[test]
    fn a_render_is_a_pdf_file() {
        for renderer in [Renderer::KrillaSubsets, Renderer::SharedSubsets] {
            let bytes = render(&sample(), renderer).unwrap();
            assert!(bytes.starts_with(b"%PDF-"), "{renderer:?}");
            assert!(
                bytes.ends_with(b"%%EOF") || bytes.ends_with(b"%%EOF\n"),
                "{renderer:?}"
            );
        }
    }
}
