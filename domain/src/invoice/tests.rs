use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::json;

use crate::clock::FixedClock;
use crate::currency::Currency;
use crate::id::{CustomerId, InvoiceId, PaymentId, SubscriptionId};
use crate::invoice::{
    DocumentFingerprint, DocumentHeader, DocumentType, Invoice, InvoiceAdjustment, InvoiceCommand,
    InvoiceError, InvoiceEvent, InvoiceLine, InvoiceServices, InvoiceStatus, LineInput,
    PdfFingerprint, FIRST_RENDERER,
};
use crate::tenant::{Mode, Tenant};

type InvoiceTester = TestFramework<Invoice>;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn due() -> DateTime<Utc> {
    now() + Duration::days(14)
}

fn period_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn period_end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()
}

fn services() -> InvoiceServices {
    InvoiceServices {
        clock: Arc::new(FixedClock(now())),
        documents: Arc::new(NumberAndStatus),
    }
}

/// The renderer the stand-in below says it is: not one the documents crate knows, so a test
/// sees the number recorded is the one the service gave.
const RENDERER: u16 = 9;

/// A stand-in for the PDF's digest that changes with what the document shows: its number,
/// status and customer.
struct NumberAndStatus;

impl DocumentFingerprint for NumberAndStatus {
    fn pdf_fingerprint(&self, invoice: &Invoice) -> Option<PdfFingerprint> {
        let header = invoice.header.as_ref()?;
        Some(PdfFingerprint {
            sha256: format!(
                "{}:{}:{}",
                invoice.number.as_deref()?,
                invoice.status?.as_str(),
                header.customer_name.as_deref().unwrap_or_default()
            ),
            renderer: RENDERER,
        })
    }
}

fn header() -> DocumentHeader {
    DocumentHeader {
        merchant_name: "Acme".into(),
        customer_name: Some("Zoë".into()),
        ..DocumentHeader::default()
    }
}

fn tenant() -> Tenant {
    Tenant::new("merchant_1", Mode::Test)
}

fn other_tenant() -> Tenant {
    Tenant::new("merchant_1", Mode::Live)
}

fn inv(n: u32) -> InvoiceId {
    InvoiceId::parse(&format!("inv_{n}")).unwrap()
}

fn pay(n: u32) -> PaymentId {
    PaymentId::parse(&format!("pay_{n}")).unwrap()
}

fn customer() -> CustomerId {
    CustomerId::parse("cust_1").unwrap()
}

fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}

fn input(description: &str, quantity: i64, unit_amount_cents: i64) -> LineInput {
    LineInput {
        description: description.into(),
        quantity,
        unit_amount_cents,
        period_start: None,
        period_end: None,
    }
}

fn create(lines: Vec<LineInput>) -> InvoiceCommand {
    InvoiceCommand::CreateDraft {
        id: inv(1),
        tenant: tenant(),
        customer_id: customer(),
        subscription_id: None,
        currency: "usd".into(),
        lines,
        period_start: None,
        period_end: None,
    }
}

fn line(description: &str, quantity: i64, unit_amount_cents: i64) -> InvoiceLine {
    InvoiceLine {
        description: description.into(),
        quantity,
        unit_amount_cents,
        amount_cents: quantity * unit_amount_cents,
        period_start: None,
        period_end: None,
    }
}

/// A standard draft of one line of `total_cents`.
fn drafted(total_cents: i64) -> InvoiceEvent {
    InvoiceEvent::InvoiceDrafted {
        id: inv(1),
        tenant: tenant(),
        customer_id: customer(),
        subscription_id: None,
        currency: usd(),
        document_type: DocumentType::Standard,
        lines: vec![line("Pro", 1, total_cents)],
        subtotal_cents: total_cents,
        total_amount_cents: total_cents,
        period_start: None,
        period_end: None,
        original_invoice_id: None,
        at: now(),
    }
}

fn issued() -> InvoiceEvent {
    InvoiceEvent::InvoiceIssued {
        number: "INV-0001".into(),
        issue_date: now(),
        due_date: due(),
        pdf_sha256: Some("INV-0001:issued:Zoë".into()),
        pdf_renderer: Some(RENDERER),
        header: Some(header()),
    }
}

fn payment_recorded(n: u32, amount_cents: i64) -> InvoiceEvent {
    InvoiceEvent::InvoicePaymentRecorded {
        payment_id: pay(n),
        amount_cents,
        at: now(),
    }
}

fn paid(payment: Option<u32>) -> InvoiceEvent {
    InvoiceEvent::InvoicePaid {
        paid_date: now(),
        payment_id: payment.map(pay),
        pdf_sha256: None,
    }
}

/// A payment as recorded before 2026-12-04: with the paid edition's digest.
fn paid_with_fingerprint(payment: Option<u32>) -> InvoiceEvent {
    InvoiceEvent::InvoicePaid {
        paid_date: now(),
        payment_id: payment.map(pay),
        pdf_sha256: Some("INV-0001:paid:Zoë".into()),
    }
}

fn voided(cancellation: Option<u32>, amount_cents: i64) -> InvoiceEvent {
    InvoiceEvent::InvoiceVoided {
        cancellation_id: cancellation.map(inv),
        amount_cents,
        at: now(),
    }
}

fn credited(n: u32, amount_cents: i64) -> InvoiceEvent {
    InvoiceEvent::InvoiceCredited {
        credit_note_id: inv(n),
        amount_cents,
        at: now(),
    }
}

fn uncollectible() -> InvoiceEvent {
    InvoiceEvent::InvoiceMarkedUncollectible { at: now() }
}

/// An issued invoice of 2900 and the events that brought it there.
fn issued_2900() -> Vec<InvoiceEvent> {
    vec![drafted(2900), issued()]
}

fn paid_2900() -> Vec<InvoiceEvent> {
    vec![
        drafted(2900),
        issued(),
        payment_recorded(1, 2900),
        paid(Some(1)),
    ]
}

fn issue() -> InvoiceCommand {
    InvoiceCommand::Issue {
        tenant: tenant(),
        number: "INV-0001".into(),
        due_date: Some(due()),
        header: header(),
    }
}

fn record_payment(n: u32, amount_cents: i64) -> InvoiceCommand {
    InvoiceCommand::RecordPayment {
        tenant: tenant(),
        payment_id: pay(n),
        amount_cents,
    }
}

fn void(cancellation: Option<u32>) -> InvoiceCommand {
    InvoiceCommand::Void {
        tenant: tenant(),
        cancellation_id: cancellation.map(inv),
    }
}

fn credit(n: u32, amount_cents: Option<i64>) -> InvoiceCommand {
    InvoiceCommand::Credit {
        tenant: tenant(),
        credit_note_id: inv(n),
        amount_cents,
    }
}

fn mark_uncollectible() -> InvoiceCommand {
    InvoiceCommand::MarkUncollectible { tenant: tenant() }
}

fn issue_adjustment(document_type: DocumentType, amount_cents: i64) -> InvoiceCommand {
    adjustment_with(document_type, amount_cents, None, "CAN-0001")
}

fn adjustment_with(
    document_type: DocumentType,
    amount_cents: i64,
    reason: Option<&str>,
    number: &str,
) -> InvoiceCommand {
    InvoiceCommand::IssueAdjustment {
        id: inv(9),
        tenant: tenant(),
        customer_id: customer(),
        currency: usd(),
        document_type,
        original_invoice_id: inv(1),
        original_number: "INV-0001".into(),
        amount_cents,
        reason: reason.map(str::to_owned),
        number: number.into(),
        header: header(),
    }
}

/// The cancellation of 2900 that `issue_adjustment` makes, as its events.
fn cancellation_2900() -> Vec<InvoiceEvent> {
    vec![
        InvoiceEvent::InvoiceDrafted {
            id: inv(9),
            tenant: tenant(),
            customer_id: customer(),
            subscription_id: None,
            currency: usd(),
            document_type: DocumentType::Cancellation,
            lines: vec![line("Cancellation of INV-0001", 1, -2900)],
            subtotal_cents: -2900,
            total_amount_cents: -2900,
            period_start: None,
            period_end: None,
            original_invoice_id: Some(inv(1)),
            at: now(),
        },
        InvoiceEvent::InvoiceIssued {
            number: "CAN-0001".into(),
            issue_date: now(),
            due_date: now(),
            pdf_sha256: Some("CAN-0001:issued:Zoë".into()),
            pdf_renderer: Some(RENDERER),
            header: Some(DocumentHeader {
                original_number: Some("INV-0001".into()),
                ..header()
            }),
        },
    ]
}

fn state_after(events: Vec<InvoiceEvent>) -> Invoice {
    let mut invoice = Invoice::default();
    events.into_iter().for_each(|e| invoice.apply(e));
    invoice
}

// --- CreateDraft -----------------------------------------------------------------------------

#[test]
fn create_draft_prices_each_line_and_totals_them() {
    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(InvoiceCommand::CreateDraft {
            id: inv(1),
            tenant: tenant(),
            customer_id: customer(),
            subscription_id: Some(SubscriptionId::parse("sub_1").unwrap()),
            currency: " usd".into(),
            lines: vec![
                LineInput {
                    period_start: Some(period_start()),
                    period_end: Some(period_end()),
                    ..input("  Pro  ", 1, 2900)
                },
                input("Seats", 3, 1000),
                input("Free onboarding", 1, 0),
            ],
            period_start: Some(period_start()),
            period_end: Some(period_end()),
        })
        .then_expect_events(vec![InvoiceEvent::InvoiceDrafted {
            id: inv(1),
            tenant: tenant(),
            customer_id: customer(),
            subscription_id: Some(SubscriptionId::parse("sub_1").unwrap()),
            currency: usd(),
            document_type: DocumentType::Standard,
            lines: vec![
                InvoiceLine {
                    period_start: Some(period_start()),
                    period_end: Some(period_end()),
                    ..line("Pro", 1, 2900)
                },
                line("Seats", 3, 1000),
                line("Free onboarding", 1, 0),
            ],
            subtotal_cents: 5900,
            total_amount_cents: 5900,
            period_start: Some(period_start()),
            period_end: Some(period_end()),
            original_invoice_id: None,
            at: now(),
        }]);
}

#[test]
fn create_draft_is_refused_when_the_id_already_exists() {
    InvoiceTester::with(services())
        .given(vec![drafted(2900)])
        .when(create(vec![input("Pro", 1, 2900)]))
        .then_expect_error_message("Invoice already exists");
}

#[test]
fn create_draft_is_refused_when_the_currency_is_invalid() {
    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(InvoiceCommand::CreateDraft {
            id: inv(1),
            tenant: tenant(),
            customer_id: customer(),
            subscription_id: None,
            currency: "dollars".into(),
            lines: vec![input("Pro", 1, 2900)],
            period_start: None,
            period_end: None,
        })
        .then_expect_error_message("Currency must be a three-letter ISO 4217 code");
}

#[test]
fn create_draft_is_refused_without_lines() {
    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(create(vec![]))
        .then_expect_error_message("An invoice needs at least one line");
}

#[test]
fn create_draft_is_refused_when_a_description_is_blank_naming_the_line() {
    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(create(vec![input("Pro", 1, 2900), input(" \t ", 1, 100)]))
        .then_expect_error_message("Line 2: description is required");
}

#[test]
fn create_draft_takes_500_characters_of_description_and_refuses_501() {
    let longest = "é".repeat(500);
    let result = InvoiceTester::with(services())
        .given_no_previous_events()
        .when(create(vec![input(&longest, 1, 100)]))
        .inspect_result();
    assert!(result.is_ok(), "{result:?}");

    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(create(vec![input(&"a".repeat(501), 1, 100)]))
        .then_expect_error(InvoiceError::DescriptionTooLong { line: 1 });
}

#[test]
fn create_draft_is_refused_when_a_quantity_is_not_between_1_and_a_million() {
    for quantity in [0, -1, 1_000_001] {
        InvoiceTester::with(services())
            .given_no_previous_events()
            .when(create(vec![input("Seats", quantity, 100)]))
            .then_expect_error_message("Line 1: quantity must be between 1 and 1000000");
    }
}

#[test]
fn create_draft_is_refused_when_a_unit_amount_is_negative_or_above_10_to_the_10() {
    for unit in [-1, 10_000_000_001] {
        InvoiceTester::with(services())
            .given_no_previous_events()
            .when(create(vec![input("Pro", 1, unit)]))
            .then_expect_error(InvoiceError::InvalidUnitAmount { line: 1 });
    }
}

#[test]
fn create_draft_takes_a_line_of_exactly_10_to_the_12_cents_and_refuses_more() {
    let result = InvoiceTester::with(services())
        .given_no_previous_events()
        .when(create(vec![input("Fleet", 100, 10_000_000_000)]))
        .inspect_result();
    assert!(result.is_ok(), "{result:?}");

    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(create(vec![input("Fleet", 101, 10_000_000_000)]))
        .then_expect_error_message("Line 1: amount must be at most 1000000000000 cents");
}

#[test]
fn create_draft_is_refused_when_the_total_is_above_10_to_the_12_cents() {
    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(create(vec![
            input("Fleet", 100, 10_000_000_000),
            input("One more", 1, 1),
        ]))
        .then_expect_error(InvoiceError::TotalTooLarge);
}

#[test]
fn create_draft_is_refused_when_a_period_ends_before_it_starts() {
    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(InvoiceCommand::CreateDraft {
            id: inv(1),
            tenant: tenant(),
            customer_id: customer(),
            subscription_id: None,
            currency: "USD".into(),
            lines: vec![input("Pro", 1, 2900)],
            period_start: Some(period_end()),
            period_end: Some(period_start()),
        })
        .then_expect_error(InvoiceError::PeriodEndsBeforeStart);

    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(create(vec![LineInput {
            period_start: Some(period_end()),
            period_end: Some(period_start()),
            ..input("Pro", 1, 2900)
        }]))
        .then_expect_error(InvoiceError::LinePeriodEndsBeforeStart { line: 1 });
}

// --- Issue -----------------------------------------------------------------------------------

#[test]
fn issue_numbers_a_draft_and_dates_it_now() {
    InvoiceTester::with(services())
        .given(vec![drafted(2900)])
        .when(issue())
        .then_expect_events(vec![issued()]);
}

#[test]
fn issue_an_invoice_of_zero_pays_it_with_no_payment() {
    InvoiceTester::with(services())
        .given(vec![drafted(0)])
        .when(issue())
        .then_expect_events(vec![issued(), paid(None)]);

    let invoice = state_after(vec![drafted(0), issued(), paid(None)]);
    assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
    assert_eq!(invoice.paid_date, Some(now()));
    assert!(invoice.payment_ids.is_empty());
}

#[test]
fn issue_is_refused_unless_the_invoice_is_a_draft() {
    for given in [issued_2900(), paid_2900()] {
        InvoiceTester::with(services())
            .given(given)
            .when(issue())
            .then_expect_error_message("Invoice is already issued");
    }
    InvoiceTester::with(services())
        .given(vec![drafted(2900), voided(None, 0)])
        .when(issue())
        .then_expect_error(InvoiceError::Voided);
}

#[test]
fn issue_is_refused_without_a_number() {
    InvoiceTester::with(services())
        .given(vec![drafted(2900)])
        .when(InvoiceCommand::Issue {
            tenant: tenant(),
            number: "  ".into(),
            due_date: Some(due()),
            header: header(),
        })
        .then_expect_error(InvoiceError::NumberRequired);
}

#[test]
fn issue_is_refused_when_the_due_date_is_before_today() {
    InvoiceTester::with(services())
        .given(vec![drafted(2900)])
        .when(InvoiceCommand::Issue {
            tenant: tenant(),
            number: "INV-0001".into(),
            due_date: Some(now() - Duration::seconds(1)),
            header: header(),
        })
        .then_expect_error(InvoiceError::DueDateBeforeIssueDate);
}

#[test]
fn issue_is_refused_for_another_tenant_or_an_invoice_never_drafted() {
    InvoiceTester::with(services())
        .given(vec![drafted(2900)])
        .when(InvoiceCommand::Issue {
            tenant: other_tenant(),
            number: "INV-0001".into(),
            due_date: Some(due()),
            header: header(),
        })
        .then_expect_error_message("Invoice not found");
    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(issue())
        .then_expect_error(InvoiceError::NotFound);
}

// --- RecordPayment ---------------------------------------------------------------------------

#[test]
fn record_payment_of_the_total_pays_the_invoice_with_that_payment() {
    InvoiceTester::with(services())
        .given(issued_2900())
        .when(record_payment(1, 2900))
        .then_expect_events(vec![payment_recorded(1, 2900), paid(Some(1))]);
}

#[test]
fn record_payment_of_a_part_leaves_the_rest_due_until_it_is_paid() {
    InvoiceTester::with(services())
        .given(issued_2900())
        .when(record_payment(1, 1000))
        .then_expect_events(vec![payment_recorded(1, 1000)]);
    InvoiceTester::with(services())
        .given(issued_2900())
        .and(vec![payment_recorded(1, 1000)])
        .when(record_payment(2, 1900))
        .then_expect_events(vec![payment_recorded(2, 1900), paid(Some(2))]);

    let partly = state_after([issued_2900(), vec![payment_recorded(1, 1000)]].concat());
    assert_eq!(partly.status, Some(InvoiceStatus::Issued));
    assert_eq!(partly.amount_paid_cents, 1000);
    assert_eq!(partly.amount_due_cents(), 1900);
}

#[test]
fn record_payment_again_with_the_same_payment_records_nothing() {
    InvoiceTester::with(services())
        .given(issued_2900())
        .and(vec![payment_recorded(1, 1000)])
        .when(record_payment(1, 1000))
        .then_expect_events(vec![]);
    InvoiceTester::with(services())
        .given(paid_2900())
        .when(record_payment(1, 2900))
        .then_expect_events(vec![]);
}

#[test]
fn record_payment_of_a_new_payment_on_a_paid_invoice_is_refused() {
    InvoiceTester::with(services())
        .given(paid_2900())
        .when(record_payment(2, 2900))
        .then_expect_error_message("Invoice is already paid");
}

#[test]
fn record_payment_is_refused_on_a_draft_a_void_or_an_uncollectible_invoice() {
    InvoiceTester::with(services())
        .given(vec![drafted(2900)])
        .when(record_payment(1, 2900))
        .then_expect_error(InvoiceError::StillDraft);
    InvoiceTester::with(services())
        .given(issued_2900())
        .and(vec![voided(Some(8), 2900)])
        .when(record_payment(1, 2900))
        .then_expect_error_message("Invoice is void");
    InvoiceTester::with(services())
        .given(issued_2900())
        .and(vec![uncollectible()])
        .when(record_payment(1, 2900))
        .then_expect_error_message("Invoice is uncollectible");
}

#[test]
fn record_payment_is_refused_when_the_amount_is_not_between_1_and_10_to_the_12() {
    for amount in [0, -100, 1_000_000_000_001] {
        InvoiceTester::with(services())
            .given(issued_2900())
            .when(record_payment(1, amount))
            .then_expect_error(InvoiceError::InvalidPaymentAmount);
    }
}

#[test]
fn record_payment_is_refused_for_another_tenant() {
    InvoiceTester::with(services())
        .given(issued_2900())
        .when(InvoiceCommand::RecordPayment {
            tenant: other_tenant(),
            payment_id: pay(1),
            amount_cents: 2900,
        })
        .then_expect_error(InvoiceError::NotFound);
}

// --- Void ------------------------------------------------------------------------------------

#[test]
fn void_a_draft_needs_no_number_and_no_cancellation() {
    InvoiceTester::with(services())
        .given(vec![drafted(2900)])
        .when(void(None))
        .then_expect_events(vec![voided(None, 0)]);

    let invoice = state_after(vec![drafted(2900), voided(None, 0)]);
    assert_eq!(invoice.status, Some(InvoiceStatus::Void));
    assert_eq!(invoice.number, None);
    assert_eq!(invoice.amount_due_cents(), 0);
    assert!(invoice.adjustments.is_empty());
}

#[test]
fn void_an_issued_invoice_records_the_cancellation_of_what_is_left() {
    InvoiceTester::with(services())
        .given(issued_2900())
        .and(vec![credited(7, 900)])
        .when(void(Some(8)))
        .then_expect_events(vec![voided(Some(8), 2000)]);

    let invoice =
        state_after([issued_2900(), vec![credited(7, 900), voided(Some(8), 2000)]].concat());
    assert_eq!(invoice.status, Some(InvoiceStatus::Void));
    assert_eq!(invoice.credited_cents, 2900);
    assert_eq!(
        invoice.adjustments,
        vec![
            InvoiceAdjustment {
                invoice_id: inv(7),
                document_type: DocumentType::CreditNote,
                amount_cents: 900,
            },
            InvoiceAdjustment {
                invoice_id: inv(8),
                document_type: DocumentType::Cancellation,
                amount_cents: 2000,
            },
        ]
    );
}

#[test]
fn void_is_refused_for_a_paid_invoice() {
    InvoiceTester::with(services())
        .given(paid_2900())
        .when(void(Some(8)))
        .then_expect_error_message("A paid invoice cannot be voided; issue a credit note");
}

#[test]
fn void_is_refused_for_a_partly_paid_invoice() {
    InvoiceTester::with(services())
        .given(issued_2900())
        .and(vec![payment_recorded(1, 1000)])
        .when(void(Some(8)))
        .then_expect_error(InvoiceError::PartlyPaidCannotBeVoided);
}

#[test]
fn void_is_refused_when_already_void_or_uncollectible() {
    InvoiceTester::with(services())
        .given(vec![drafted(2900), voided(None, 0)])
        .when(void(None))
        .then_expect_error_message("Invoice is already void");
    InvoiceTester::with(services())
        .given(issued_2900())
        .and(vec![voided(Some(8), 2900)])
        .when(void(Some(9)))
        .then_expect_error(InvoiceError::AlreadyVoid);
    InvoiceTester::with(services())
        .given(issued_2900())
        .and(vec![uncollectible()])
        .when(void(Some(8)))
        .then_expect_error(InvoiceError::Uncollectible);
}

#[test]
fn void_again_with_the_same_cancellation_records_nothing() {
    InvoiceTester::with(services())
        .given(issued_2900())
        .and(vec![voided(Some(8), 2900)])
        .when(void(Some(8)))
        .then_expect_events(vec![]);
}

#[test]
fn void_needs_a_cancellation_for_an_issued_invoice_and_none_for_a_draft() {
    InvoiceTester::with(services())
        .given(issued_2900())
        .when(void(None))
        .then_expect_error(InvoiceError::CancellationRequired);
    InvoiceTester::with(services())
        .given(vec![drafted(2900)])
        .when(void(Some(8)))
        .then_expect_error(InvoiceError::DraftNeedsNoCancellation);
}

// --- Credit ----------------------------------------------------------------------------------

#[test]
fn credit_without_an_amount_credits_everything_left_to_credit() {
    InvoiceTester::with(services())
        .given(paid_2900())
        .and(vec![credited(7, 900)])
        .when(credit(8, None))
        .then_expect_events(vec![credited(8, 2000)]);
}

#[test]
fn credit_part_of_a_paid_invoice_keeps_it_paid() {
    InvoiceTester::with(services())
        .given(paid_2900())
        .when(credit(7, Some(900)))
        .then_expect_events(vec![credited(7, 900)]);

    let invoice = state_after([paid_2900(), vec![credited(7, 900)]].concat());
    assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
    assert_eq!(invoice.credited_cents, 900);
    assert_eq!(invoice.remaining_to_credit_cents(), 2000);
    assert_eq!(invoice.amount_due_cents(), 0);
}

#[test]
fn credit_of_an_issued_invoice_lowers_what_is_due_and_pays_it_when_nothing_is_left() {
    InvoiceTester::with(services())
        .given(issued_2900())
        .when(credit(7, Some(900)))
        .then_expect_events(vec![credited(7, 900)]);
    assert_eq!(
        state_after([issued_2900(), vec![credited(7, 900)]].concat()).amount_due_cents(),
        2000
    );

    InvoiceTester::with(services())
        .given(issued_2900())
        .and(vec![payment_recorded(1, 1000)])
        .when(credit(7, Some(1900)))
        .then_expect_events(vec![credited(7, 1900), paid(None)]);
}

#[test]
fn credit_is_refused_when_it_exceeds_what_is_left_to_credit() {
    InvoiceTester::with(services())
        .given(paid_2900())
        .and(vec![credited(7, 900)])
        .when(credit(8, Some(2001)))
        .then_expect_error_message("Credit note amount exceeds what is left to credit");
}

#[test]
fn credit_is_refused_when_the_amount_is_not_positive() {
    for amount in [0, -1] {
        InvoiceTester::with(services())
            .given(paid_2900())
            .when(credit(7, Some(amount)))
            .then_expect_error(InvoiceError::InvalidCreditAmount);
    }
}

#[test]
fn credit_is_refused_when_nothing_is_left_to_credit() {
    InvoiceTester::with(services())
        .given(paid_2900())
        .and(vec![credited(7, 2900)])
        .when(credit(8, None))
        .then_expect_error(InvoiceError::NothingLeftToCredit);
}

#[test]
fn credit_is_refused_for_a_draft_a_void_or_an_uncollectible_invoice() {
    InvoiceTester::with(services())
        .given(vec![drafted(2900)])
        .when(credit(7, None))
        .then_expect_error_message("Invoice is still a draft");
    InvoiceTester::with(services())
        .given(issued_2900())
        .and(vec![voided(Some(8), 2900)])
        .when(credit(7, None))
        .then_expect_error(InvoiceError::Voided);
    InvoiceTester::with(services())
        .given(issued_2900())
        .and(vec![uncollectible()])
        .when(credit(7, None))
        .then_expect_error(InvoiceError::Uncollectible);
}

#[test]
fn credit_again_with_the_same_credit_note_records_nothing() {
    InvoiceTester::with(services())
        .given(paid_2900())
        .and(vec![credited(7, 900)])
        .when(credit(7, Some(900)))
        .then_expect_events(vec![]);
}

#[test]
fn credit_is_refused_for_another_tenant() {
    InvoiceTester::with(services())
        .given(paid_2900())
        .when(InvoiceCommand::Credit {
            tenant: other_tenant(),
            credit_note_id: inv(7),
            amount_cents: None,
        })
        .then_expect_error(InvoiceError::NotFound);
}

// --- MarkUncollectible -----------------------------------------------------------------------

#[test]
fn mark_uncollectible_writes_off_an_issued_invoice() {
    InvoiceTester::with(services())
        .given(issued_2900())
        .when(mark_uncollectible())
        .then_expect_events(vec![uncollectible()]);

    let invoice = state_after([issued_2900(), vec![uncollectible()]].concat());
    assert_eq!(invoice.status, Some(InvoiceStatus::Uncollectible));
    assert_eq!(invoice.amount_due_cents(), 2900);
}

#[test]
fn mark_uncollectible_is_refused_unless_the_invoice_is_issued_and_unpaid() {
    let cases = [
        (vec![drafted(2900)], InvoiceError::StillDraft),
        (paid_2900(), InvoiceError::InvoiceAlreadyPaid),
        (vec![drafted(2900), voided(None, 0)], InvoiceError::Voided),
        (
            [issued_2900(), vec![uncollectible()]].concat(),
            InvoiceError::AlreadyUncollectible,
        ),
    ];
    for (given, error) in cases {
        InvoiceTester::with(services())
            .given(given)
            .when(mark_uncollectible())
            .then_expect_error(error);
    }
    InvoiceTester::with(services())
        .given(issued_2900())
        .when(InvoiceCommand::MarkUncollectible {
            tenant: other_tenant(),
        })
        .then_expect_error(InvoiceError::NotFound);
}

// --- IssueAdjustment -------------------------------------------------------------------------

#[test]
fn issue_adjustment_creates_an_issued_cancellation_with_one_negative_line() {
    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(issue_adjustment(DocumentType::Cancellation, 2900))
        .then_expect_events(cancellation_2900());
}

#[test]
fn issue_adjustment_creates_a_credit_note_that_names_its_reason_and_stays_issued() {
    let events = InvoiceTester::with(services())
        .given_no_previous_events()
        .when(adjustment_with(
            DocumentType::CreditNote,
            900,
            Some("  damaged goods "),
            "CN-0001",
        ))
        .inspect_result()
        .unwrap();
    let names: Vec<String> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(names, [InvoiceEvent::DRAFTED, InvoiceEvent::ISSUED]);

    // A credit note owes nothing and is never paid: it stays issued.
    let note = state_after(events);
    assert_eq!(note.status, Some(InvoiceStatus::Issued));
    assert_eq!(note.document_type, Some(DocumentType::CreditNote));
    assert_eq!(note.number.as_deref(), Some("CN-0001"));
    assert_eq!(note.original_invoice_id, Some(inv(1)));
    assert_eq!(
        note.lines,
        vec![line("Credit note for INV-0001: damaged goods", 1, -900)]
    );
    assert_eq!(note.total_amount_cents, -900);
    assert_eq!(note.amount_due_cents(), 0);
    assert_eq!(note.paid_date, None);
}

#[test]
fn issue_adjustment_is_refused_when_the_id_already_exists() {
    InvoiceTester::with(services())
        .given(cancellation_2900())
        .when(issue_adjustment(DocumentType::Cancellation, 2900))
        .then_expect_error(InvoiceError::AlreadyExists);
}

#[test]
fn issue_adjustment_is_refused_for_a_standard_document() {
    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(issue_adjustment(DocumentType::Standard, 2900))
        .then_expect_error(InvoiceError::NotAnAdjustmentType);
}

#[test]
fn issue_adjustment_is_refused_when_the_amount_is_not_between_1_and_10_to_the_12() {
    for amount in [0, -2900, 1_000_000_000_001] {
        InvoiceTester::with(services())
            .given_no_previous_events()
            .when(issue_adjustment(DocumentType::CreditNote, amount))
            .then_expect_error(InvoiceError::InvalidAdjustmentAmount);
    }
}

#[test]
fn issue_adjustment_is_refused_without_a_number_or_with_a_reason_over_500_characters() {
    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(adjustment_with(DocumentType::Cancellation, 2900, None, " "))
        .then_expect_error(InvoiceError::NumberRequired);
    InvoiceTester::with(services())
        .given_no_previous_events()
        .when(adjustment_with(
            DocumentType::CreditNote,
            900,
            Some(&"x".repeat(501)),
            "CN-0001",
        ))
        .then_expect_error(InvoiceError::ReasonTooLong);
}

#[test]
fn an_adjustment_document_cannot_be_paid_voided_credited_or_written_off() {
    for command in [
        record_payment(1, 100),
        void(Some(10)),
        credit(10, None),
        mark_uncollectible(),
    ] {
        InvoiceTester::with(services())
            .given(cancellation_2900())
            .when(command)
            .then_expect_error(InvoiceError::NotStandard);
    }
}

// --- Stored shapes ---------------------------------------------------------------------------

#[test]
fn statuses_and_document_types_are_stored_in_snake_case() {
    for status in [
        InvoiceStatus::Draft,
        InvoiceStatus::Issued,
        InvoiceStatus::Paid,
        InvoiceStatus::Void,
        InvoiceStatus::Uncollectible,
    ] {
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!(status.as_str())
        );
    }
    for document_type in [
        DocumentType::Standard,
        DocumentType::Cancellation,
        DocumentType::CreditNote,
    ] {
        assert_eq!(
            serde_json::to_value(document_type).unwrap(),
            json!(document_type.as_str())
        );
    }
    assert_eq!(DocumentType::CreditNote.as_str(), "credit_note");
}

#[test]
fn every_stored_invoice_event_is_named_by_its_type_and_reads_back_equal() {
    let events = [
        drafted(2900),
        issued(),
        payment_recorded(1, 2900),
        paid(Some(1)),
        voided(Some(8), 2900),
        credited(7, 900),
        uncollectible(),
    ];
    let names: Vec<String> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(
        names,
        [
            "InvoiceDrafted",
            "InvoiceIssued",
            "InvoicePaymentRecorded",
            "InvoicePaid",
            "InvoiceVoided",
            "InvoiceCredited",
            "InvoiceMarkedUncollectible",
        ]
    );
    for event in events {
        assert_eq!(event.event_version(), "1");
        let stored = serde_json::to_value(&event).unwrap();
        let keys: Vec<&String> = stored.as_object().unwrap().keys().collect();
        assert_eq!(keys, [&event.event_type()]);
        assert_eq!(
            serde_json::from_value::<InvoiceEvent>(stored).unwrap(),
            event
        );
    }
}

#[test]
fn stored_invoice_events_are_camel_case() {
    assert_eq!(
        serde_json::to_value(&cancellation_2900()[0]).unwrap(),
        json!({"InvoiceDrafted": {
            "id": "inv_9",
            "tenant": {"merchantId": "merchant_1", "mode": "test"},
            "customerId": "cust_1",
            "subscriptionId": null,
            "currency": "USD",
            "documentType": "cancellation",
            "lines": [{
                "description": "Cancellation of INV-0001",
                "quantity": 1,
                "unitAmountCents": -2900,
                "amountCents": -2900,
                "periodStart": null,
                "periodEnd": null,
            }],
            "subtotalCents": -2900,
            "totalAmountCents": -2900,
            "periodStart": null,
            "periodEnd": null,
            "originalInvoiceId": "inv_1",
            "at": "2026-01-02T03:04:05Z",
        }})
    );
    assert_eq!(
        serde_json::to_value(issued()).unwrap(),
        json!({"InvoiceIssued": {
            "number": "INV-0001",
            "issueDate": "2026-01-02T03:04:05Z",
            "dueDate": "2026-01-16T03:04:05Z",
            "pdfSha256": "INV-0001:issued:Zoë",
            "pdfRenderer": 9,
            "header": {
                "merchantName": "Acme",
                "customerName": "Zoë",
                "customerEmail": null,
                "addressLines": [],
                "taxId": null,
                "originalNumber": null,
            },
        }})
    );
    assert_eq!(
        serde_json::to_value(paid_with_fingerprint(None)).unwrap(),
        json!({"InvoicePaid": {
            "paidDate": "2026-01-02T03:04:05Z",
            "paymentId": null,
            "pdfSha256": "INV-0001:paid:Zoë",
        }})
    );
    assert_eq!(
        serde_json::to_value(voided(Some(8), 2900)).unwrap(),
        json!({"InvoiceVoided": {
            "cancellationId": "inv_8",
            "amountCents": 2900,
            "at": "2026-01-02T03:04:05Z",
        }})
    );
}

#[test]
fn an_invoice_issued_without_a_due_date_is_due_on_issue() {
    InvoiceTester::with(services())
        .given(vec![drafted(5000)])
        .when(InvoiceCommand::Issue {
            tenant: tenant(),
            number: "INV-0001".into(),
            due_date: None,
            header: header(),
        })
        .then_expect_events(vec![InvoiceEvent::InvoiceIssued {
            number: "INV-0001".into(),
            issue_date: now(),
            due_date: now(),
            pdf_sha256: Some("INV-0001:issued:Zoë".into()),
            pdf_renderer: Some(RENDERER),
            header: Some(header()),
        }]);
}

// --- The document's fingerprint -------------------------------------------------------------

#[test]
fn an_issue_records_the_header_and_the_fingerprint_of_the_document_it_issues() {
    let mut invoice = Invoice::default();
    for event in [drafted(2900), issued()] {
        invoice.apply(event);
    }
    assert_eq!(invoice.header, Some(header()));
    assert_eq!(invoice.recorded_pdf_sha256(), Some("INV-0001:issued:Zoë"));
    assert_eq!(invoice.pdf_renderer(), RENDERER);
}

#[test]
fn a_document_issued_before_renderers_were_recorded_was_drawn_by_the_first() {
    let issued: InvoiceEvent = serde_json::from_value(json!({"InvoiceIssued": {
        "number": "INV-0001",
        "issueDate": "2026-01-02T03:04:05Z",
        "dueDate": "2026-01-02T03:04:05Z",
        "pdfSha256": "ce8f14b35b814f6e347b54af8fc27aeafba589dfdacaebd675cf55af4a16473a",
        "header": {"merchantName": "Acme", "customerName": "Zoë", "customerEmail": null,
                   "addressLines": [], "taxId": null, "originalNumber": null},
    }}))
    .unwrap();
    let mut invoice = Invoice::default();
    for event in [drafted(2900), issued] {
        invoice.apply(event);
    }
    assert_eq!(invoice.pdf_renderer(), FIRST_RENDERER);
    assert!(invoice.recorded_pdf_sha256().is_some());
}

#[test]
fn a_payment_in_full_renders_no_second_document() {
    // The paid edition is rendered when it is downloaded, checked against the issue's digest.
    InvoiceTester::with(services())
        .given(vec![drafted(2900), issued()])
        .when(record_payment(1, 2900))
        .then_expect_events(vec![
            payment_recorded(1, 2900),
            InvoiceEvent::InvoicePaid {
                paid_date: now(),
                payment_id: Some(pay(1)),
                pdf_sha256: None,
            },
        ]);
}

#[test]
fn a_paid_documents_fingerprint_recorded_before_still_counts() {
    let mut invoice = Invoice::default();
    for event in [
        drafted(2900),
        issued(),
        payment_recorded(1, 2900),
        paid_with_fingerprint(Some(1)),
    ] {
        invoice.apply(event);
    }
    assert_eq!(invoice.recorded_pdf_sha256(), Some("INV-0001:paid:Zoë"));
    assert_eq!(invoice.issued_pdf_sha256(), Some("INV-0001:issued:Zoë"));
}

#[test]
fn an_invoice_of_nothing_is_issued_and_paid_with_one_fingerprint() {
    InvoiceTester::with(services())
        .given(vec![drafted(0)])
        .when(issue())
        .then_expect_events(vec![
            issued(),
            InvoiceEvent::InvoicePaid {
                paid_date: now(),
                payment_id: None,
                pdf_sha256: None,
            },
        ]);
}

#[test]
fn events_stored_before_documents_were_fingerprinted_still_read() {
    let issued: InvoiceEvent = serde_json::from_value(json!({"InvoiceIssued": {
        "number": "INV-0001",
        "issueDate": "2026-01-02T03:04:05Z",
        "dueDate": "2026-01-02T03:04:05Z",
        "pdfSha256": null,
    }}))
    .unwrap();
    let paid: InvoiceEvent = serde_json::from_value(json!({"InvoicePaid": {
        "paidDate": "2026-01-02T03:04:05Z",
        "paymentId": null,
    }}))
    .unwrap();
    let mut invoice = Invoice::default();
    for event in [drafted(0), issued, paid] {
        invoice.apply(event);
    }
    assert_eq!(invoice.header, None);
    assert_eq!(invoice.recorded_pdf_sha256(), None);
    assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
}
