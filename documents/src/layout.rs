//! Where everything goes: an invoice becomes pages of positioned runs and rules, nothing drawn
//! yet. Laying out first means the footer can say "Page 1 of 3", and a row or the totals block
//! that would not fit moves to the next page whole.
//!
//! Coordinates are PDF points (1/72 inch) on A4, from the top-left corner, y downwards; a
//! run's y is its baseline.

use chrono::NaiveDate;

use crate::money::{format_count, format_money};
use crate::text::{Fonts, Run, Weight};
use crate::{DocumentLine, InvoiceDocument};

pub(crate) const PAGE_WIDTH: f32 = 595.28;
pub(crate) const PAGE_HEIGHT: f32 = 841.89;

const LEFT: f32 = 56.0;
const RIGHT: f32 = PAGE_WIDTH - 56.0;
const TOP: f32 = 64.0;
/// Nothing but the footer goes below this.
const CONTENT_BOTTOM: f32 = PAGE_HEIGHT - 64.0;
const FOOTER_BASELINE: f32 = PAGE_HEIGHT - 36.0;

/// The dates and the period sit in a column of their own, right of the customer.
const DETAILS_LEFT: f32 = 330.0;
const CUSTOMER_WIDTH: f32 = DETAILS_LEFT - LEFT - 24.0;

/// The table's numeric columns are right-aligned at these edges; the description takes the
/// rest. The widths hold the largest amounts the domain accepts at full size; anything wider
/// is set smaller rather than spilling into the next column.
const AMOUNT_RIGHT: f32 = RIGHT;
const AMOUNT_WIDTH: f32 = 104.0;
const UNIT_RIGHT: f32 = AMOUNT_RIGHT - AMOUNT_WIDTH - 8.0;
const UNIT_WIDTH: f32 = 96.0;
const QUANTITY_RIGHT: f32 = UNIT_RIGHT - UNIT_WIDTH - 8.0;
const QUANTITY_WIDTH: f32 = 48.0;
const DESCRIPTION_WIDTH: f32 = QUANTITY_RIGHT - QUANTITY_WIDTH - 12.0 - LEFT;
/// A domain description is at most 500 characters: about nine lines. Past twelve it is cut.
const DESCRIPTION_MAX_LINES: usize = 12;
const NOTE_MAX_LINES: usize = 12;

const BODY_SIZE: f32 = 10.0;
const TABLE_SIZE: f32 = 9.5;
const SMALL_SIZE: f32 = 8.0;
const LABEL_SIZE: f32 = 8.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ink {
    Text,
    Muted,
    Rule,
    Paid,
}

impl Ink {
    /// The colour, as 8-bit red, green and blue: every renderer paints with these.
    pub(crate) fn rgb(self) -> [u8; 3] {
        match self {
            Ink::Text => [17, 17, 17],
            Ink::Muted => [102, 102, 102],
            Ink::Rule => [200, 200, 200],
            Ink::Paid => [22, 120, 60],
        }
    }
}

#[derive(Debug)]
pub(crate) enum Item {
    Text {
        x: f32,
        baseline: f32,
        size: f32,
        ink: Ink,
        run: Run,
    },
    Rule {
        x: f32,
        y: f32,
        width: f32,
        thickness: f32,
        ink: Ink,
    },
}

#[derive(Debug, Default)]
pub(crate) struct Page {
    pub(crate) items: Vec<Item>,
}

/// The document's pages, each with its footer.
pub(crate) fn compose(document: &InvoiceDocument, fonts: &Fonts) -> Vec<Page> {
    let mut composer = Composer {
        fonts,
        document,
        pages: vec![Page::default()],
        y: TOP,
    };
    composer.header();
    composer.customer_and_dates();
    composer.table();
    composer.totals();
    composer.note();
    composer.footers();
    composer.pages
}

struct Composer<'a> {
    fonts: &'a Fonts,
    document: &'a InvoiceDocument,
    pages: Vec<Page>,
    /// The top of the free space on the current page.
    y: f32,
}

impl Composer<'_> {
    fn header(&mut self) {
        let document = self.document;
        let title = document.document_type.title();

        let mut left = TOP + 8.0;
        for line in self
            .fonts
            .wrap(&document.merchant_name, Weight::Bold, 16.0, 250.0, 2)
        {
            self.text(LEFT, left, &line, Weight::Bold, 16.0, Ink::Text);
            left += 20.0;
        }

        let mut right = TOP + 8.0;
        self.text_right(RIGHT, right, title, Weight::Bold, 20.0, Ink::Text);
        right += 18.0;
        self.text_right(
            RIGHT,
            right,
            &document.number,
            Weight::Bold,
            11.0,
            Ink::Text,
        );
        if let Some(original) = &document.original_number {
            right += 15.0;
            let corrects = format!("Corrects {original}");
            self.text_right(
                RIGHT,
                right,
                &corrects,
                Weight::Regular,
                BODY_SIZE,
                Ink::Muted,
            );
        }
        if let Some(paid) = document.paid_date {
            right += 15.0;
            let paid = format!("Paid on {}", date(paid));
            self.text_right(RIGHT, right, &paid, Weight::Bold, BODY_SIZE, Ink::Paid);
        }

        self.y = left.max(right) + 10.0;
        self.rule(LEFT, self.y, RIGHT - LEFT, 0.8, Ink::Rule);
        self.y += 22.0;
    }

    fn customer_and_dates(&mut self) {
        let document = self.document;
        let customer = &document.customer;
        let top = self.y;

        let mut left = top;
        self.text(
            LEFT,
            left,
            "Billed to",
            Weight::Bold,
            LABEL_SIZE,
            Ink::Muted,
        );
        left += 16.0;
        if let Some(name) = &customer.name {
            left = self.customer_line(left, name, Weight::Bold, 10.5);
        }
        let mut rest: Vec<String> = Vec::new();
        rest.extend(customer.email.iter().cloned());
        rest.extend(customer.address_lines.iter().cloned());
        rest.extend(
            customer
                .tax_id
                .iter()
                .map(|tax_id| format!("Tax ID: {tax_id}")),
        );
        for line in &rest {
            left = self.customer_line(left, line, Weight::Regular, BODY_SIZE);
        }

        let mut details: Vec<(&str, String)> = vec![("Issue date", date(document.issue_date))];
        if let Some(due) = document.due_date {
            details.push(("Due date", date(due)));
        }
        if let Some(period) = document.period {
            details.push(("Period", period_text(period)));
        }
        let mut right = top;
        for (label, value) in &details {
            self.text(
                DETAILS_LEFT,
                right,
                label,
                Weight::Regular,
                BODY_SIZE,
                Ink::Muted,
            );
            self.text_right(RIGHT, right, value, Weight::Regular, BODY_SIZE, Ink::Text);
            right += 16.0;
        }

        self.y = left.max(right) + 18.0;
    }

    fn table(&mut self) {
        self.table_header();
        for line in &self.document.lines {
            self.table_row(line);
        }
    }

    fn table_header(&mut self) {
        let baseline = self.y + 10.0;
        let (weight, size, ink) = (Weight::Bold, LABEL_SIZE, Ink::Muted);
        self.text(LEFT, baseline, "Description", weight, size, ink);
        self.text_right(QUANTITY_RIGHT, baseline, "Qty", weight, size, ink);
        self.text_right(UNIT_RIGHT, baseline, "Unit price", weight, size, ink);
        self.text_right(AMOUNT_RIGHT, baseline, "Amount", weight, size, ink);
        self.rule(LEFT, baseline + 6.0, RIGHT - LEFT, 0.8, Ink::Rule);
        self.y = baseline + 6.0;
    }

    fn table_row(&mut self, line: &DocumentLine) {
        let description = self.fonts.wrap(
            &line.description,
            Weight::Regular,
            TABLE_SIZE,
            DESCRIPTION_WIDTH,
            DESCRIPTION_MAX_LINES,
        );
        let text_lines = description.len().max(1) as f32;
        let period_height = if line.period.is_some() { 11.5 } else { 0.0 };
        let height = 14.0 + (text_lines - 1.0) * 12.5 + period_height + 7.0;
        if self.y + height > CONTENT_BOTTOM {
            self.next_page();
            self.table_header();
        }

        let currency = &self.document.currency;
        let first = self.y + 14.0;
        let mut baseline = first;
        for text in &description {
            self.text(LEFT, baseline, text, Weight::Regular, TABLE_SIZE, Ink::Text);
            baseline += 12.5;
        }
        if let Some(period) = line.period {
            let text = period_text(period);
            self.text(
                LEFT,
                baseline - 1.0,
                &text,
                Weight::Regular,
                SMALL_SIZE,
                Ink::Muted,
            );
        }
        let cells = [
            (QUANTITY_RIGHT, QUANTITY_WIDTH, format_count(line.quantity)),
            (
                UNIT_RIGHT,
                UNIT_WIDTH,
                format_money(line.unit_amount_cents, currency),
            ),
            (
                AMOUNT_RIGHT,
                AMOUNT_WIDTH,
                format_money(line.amount_cents, currency),
            ),
        ];
        for (right, width, text) in &cells {
            self.fitted_right(*right, first, text, Weight::Regular, TABLE_SIZE, *width);
        }

        self.y += height;
        self.rule(LEFT, self.y, RIGHT - LEFT, 0.4, Ink::Rule);
    }

    fn totals(&mut self) {
        let document = self.document;
        let currency = &document.currency;
        let rows = [
            ("Subtotal", document.subtotal_cents, Weight::Regular),
            ("Total", document.total_cents, Weight::Bold),
            ("Amount paid", document.amount_paid_cents, Weight::Regular),
            ("Amount due", document.amount_due_cents, Weight::Bold),
        ];
        let height = 5.0 + rows.len() as f32 * 17.0 + 6.0;
        if self.y + height > CONTENT_BOTTOM {
            self.next_page();
        }
        let label_left = RIGHT - 240.0;
        let mut baseline = self.y + 5.0;
        for (label, cents, weight) in rows {
            baseline += 17.0;
            let amount = format_money(cents, currency);
            self.text(label_left, baseline, label, weight, BODY_SIZE, Ink::Text);
            self.fitted_right(RIGHT, baseline, &amount, weight, BODY_SIZE, 150.0);
        }
        self.y = baseline + 6.0;
    }

    fn note(&mut self) {
        let Some(note) = &self.document.note else {
            return;
        };
        let lines = self.fonts.wrap(
            note,
            Weight::Regular,
            BODY_SIZE,
            RIGHT - LEFT,
            NOTE_MAX_LINES,
        );
        if lines.is_empty() {
            return;
        }
        let height = 18.0 + lines.len() as f32 * 14.0 + 6.0;
        if self.y + height > CONTENT_BOTTOM {
            self.next_page();
        }
        let mut baseline = self.y + 18.0;
        self.text(LEFT, baseline, "Note", Weight::Bold, LABEL_SIZE, Ink::Muted);
        for line in &lines {
            baseline += 14.0;
            self.text(LEFT, baseline, line, Weight::Regular, BODY_SIZE, Ink::Text);
        }
        self.y = baseline + 6.0;
    }

    /// A later page repeats who and what the document is, so a loose page is still placed.
    fn next_page(&mut self) {
        self.pages.push(Page::default());
        let document = self.document;
        let baseline = TOP;
        let merchant = self
            .fonts
            .wrap(&document.merchant_name, Weight::Bold, 10.0, 250.0, 1);
        if let Some(merchant) = merchant.first() {
            self.text(LEFT, baseline, merchant, Weight::Bold, 10.0, Ink::Text);
        }
        let title = format!(
            "{} {} (continued)",
            document.document_type.title(),
            document.number
        );
        self.text_right(
            RIGHT,
            baseline,
            &title,
            Weight::Regular,
            BODY_SIZE,
            Ink::Muted,
        );
        self.rule(LEFT, baseline + 8.0, RIGHT - LEFT, 0.8, Ink::Rule);
        self.y = baseline + 20.0;
    }

    fn footers(&mut self) {
        let count = self.pages.len();
        let label = format!(
            "{} {}",
            self.document.document_type.title(),
            self.document.number
        );
        for index in 0..count {
            let footer = format!("{label} · Page {} of {count}", index + 1);
            let run = self.fonts.shape(&footer, Weight::Regular);
            let x = RIGHT - run.width(SMALL_SIZE);
            self.pages[index].items.push(Item::Text {
                x,
                baseline: FOOTER_BASELINE,
                size: SMALL_SIZE,
                ink: Ink::Muted,
                run,
            });
        }
    }

    /// A line of the customer block, wrapped to the block's width (three lines at most, an
    /// address line is not a paragraph); returns the baseline after it.
    fn customer_line(&mut self, mut baseline: f32, text: &str, weight: Weight, size: f32) -> f32 {
        for line in self.fonts.wrap(text, weight, size, CUSTOMER_WIDTH, 3) {
            self.text(LEFT, baseline, &line, weight, size, Ink::Text);
            baseline += 14.0;
        }
        baseline
    }

    fn text(&mut self, x: f32, baseline: f32, text: &str, weight: Weight, size: f32, ink: Ink) {
        let run = self.fonts.shape(text, weight);
        self.push_run(x, baseline, run, size, ink);
    }

    fn text_right(
        &mut self,
        right: f32,
        baseline: f32,
        text: &str,
        weight: Weight,
        size: f32,
        ink: Ink,
    ) {
        let run = self.fonts.shape(text, weight);
        self.push_run(right - run.width(size), baseline, run, size, ink);
    }

    /// Right-aligned, and set smaller if it would be wider than `max_width` at `size`.
    fn fitted_right(
        &mut self,
        right: f32,
        baseline: f32,
        text: &str,
        weight: Weight,
        size: f32,
        max_width: f32,
    ) {
        let run = self.fonts.shape(text, weight);
        let natural = run.width(size);
        let size = if natural > max_width {
            size * max_width / natural
        } else {
            size
        };
        self.push_run(right - run.width(size), baseline, run, size, Ink::Text);
    }

    fn push_run(&mut self, x: f32, baseline: f32, run: Run, size: f32, ink: Ink) {
        if run.glyphs.is_empty() {
            return;
        }
        self.current().items.push(Item::Text {
            x,
            baseline,
            size,
            ink,
            run,
        });
    }

    fn rule(&mut self, x: f32, y: f32, width: f32, thickness: f32, ink: Ink) {
        self.current().items.push(Item::Rule {
            x,
            y,
            width,
            thickness,
            ink,
        });
    }

    fn current(&mut self) -> &mut Page {
        self.pages
            .last_mut()
            .expect("composing starts with a page and only adds more")
    }
}

fn date(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

fn period_text((start, end): (NaiveDate, NaiveDate)) -> String {
    format!("{} – {}", date(start), date(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::sample;

    fn texts(page: &Page) -> Vec<&str> {
        page.items
            .iter()
            .filter_map(|item| match item {
                Item::Text { run, .. } => Some(run.text.as_str()),
                Item::Rule { .. } => None,
            })
            .collect()
    }

    #[test]
    fn everything_stays_inside_the_page_margins() {
        let fonts = Fonts::new();
        let mut document = sample();
        document.lines = (0..120)
            .map(|n| crate::tests::line(&format!("Line {n}"), 100))
            .collect();
        for page in compose(&document, &fonts) {
            for item in &page.items {
                if let Item::Text {
                    x,
                    baseline,
                    size,
                    run,
                    ..
                } = item
                {
                    assert!(*x >= LEFT - 0.01, "{} starts at {x}", run.text);
                    assert!(
                        x + run.width(*size) <= RIGHT + 0.01,
                        "{} overflows",
                        run.text
                    );
                    assert!(
                        *baseline > 0.0 && *baseline <= FOOTER_BASELINE,
                        "{}",
                        run.text
                    );
                }
            }
        }
    }

    #[test]
    fn a_long_invoice_flows_onto_pages_that_each_say_where_they_are() {
        let fonts = Fonts::new();
        let mut document = sample();
        document.lines = (0..200)
            .map(|n| crate::tests::line(&format!("Line {n}"), 100))
            .collect();
        let pages = compose(&document, &fonts);
        assert!(pages.len() > 2, "{} pages", pages.len());
        let count = pages.len();
        for (index, page) in pages.iter().enumerate() {
            let footer = format!("Invoice INV-0001 · Page {} of {count}", index + 1);
            assert!(texts(page).contains(&footer.as_str()), "page {index}");
            if index > 0 {
                assert!(texts(page).contains(&"Invoice INV-0001 (continued)"));
                assert!(
                    texts(page).contains(&"Description"),
                    "the table header repeats"
                );
            }
        }
    }

    #[test]
    fn an_amount_too_wide_for_its_column_is_set_smaller() {
        let fonts = Fonts::new();
        let mut document = sample();
        document.lines = vec![crate::tests::line("Huge", i64::MIN)];
        let pages = compose(&document, &fonts);
        let amount = format_money(i64::MIN, "USD");
        let size = pages[0]
            .items
            .iter()
            .find_map(|item| match item {
                Item::Text { run, size, .. } if run.text == amount => Some(*size),
                _ => None,
            })
            .expect("the amount is drawn");
        assert!(size < TABLE_SIZE);
        assert!(fonts.width(&amount, Weight::Regular, size) <= AMOUNT_WIDTH + 0.01);
    }
}
