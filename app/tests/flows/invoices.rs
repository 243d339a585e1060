//! Invoices through their use-cases: a draft issued with the next number of its series,
//! gapless under concurrency; voids with their cancellation; credit notes that never credit
//! more than is left; a void cut between its two steps finished on resume.

use app::customers::{CustomerChanges, CustomerFields};
use app::document_rendering::{document_of, sha256_hex};
use app::flows::DeathPlan;
use app::invoices::{NewInvoice, NewLine};
use app::number_prefixes::{set_number_prefixes, NumberPrefixes};
use app::{App, AppError};
use documents::Renderer;
use futures::future::join_all;
use projections::read_models::invoice_list::InvoiceView;
use serde_json::json;

use crate::support::Fixture;

fn line(description: &str, quantity: i64, unit_amount_cents: i64) -> NewLine {
    NewLine {
        description: Some(description.to_owned()),
        quantity: Some(quantity),
        unit_amount_cents: Some(unit_amount_cents),
    }
}

async fn draft(f: &Fixture, lines: Vec<NewLine>) -> Result<InvoiceView, AppError> {
    let customer = f
        .customer(&format!("{}@example.com", uuid::Uuid::new_v4().simple()))
        .await;
    f.app
        .create_invoice(
            &f.metadata,
            NewInvoice {
                customer_id: Some(customer.to_string()),
                currency: Some("eur".into()),
                lines: Some(lines),
            },
        )
        .await
}

async fn issued(f: &Fixture, unit_amount_cents: i64) -> InvoiceView {
    let draft = draft(f, vec![line("Consulting", 2, unit_amount_cents)])
        .await
        .expect("draft");
    f.app
        .finalize_invoice(&f.metadata, &draft.id)
        .await
        .expect("finalize")
}

#[tokio::test]
async fn a_draft_is_priced_and_issued_with_the_first_number() {
    let f = Fixture::new().await;
    let draft = draft(&f, vec![line("Consulting", 3, 1250), line("Setup", 1, 500)])
        .await
        .unwrap();
    assert_eq!(draft.status, "draft");
    assert_eq!(draft.number, None);
    assert_eq!(draft.currency, "EUR");
    assert_eq!(draft.total_amount_cents, 3 * 1250 + 500);
    let issued = f
        .app
        .finalize_invoice(&f.metadata, &draft.id)
        .await
        .unwrap();
    assert_eq!(issued.status, "issued");
    assert_eq!(issued.number.as_deref(), Some("INV-0001"));
    assert!(issued.issue_date.is_some());
    assert_eq!(issued.amount_due_cents(), 4250);
    let again = f.app.finalize_invoice(&f.metadata, &draft.id).await;
    assert!(
        matches!(&again, Err(AppError::Conflict { message, .. }) if message == "Invoice is already issued"),
        "{again:?}"
    );
}

#[tokio::test]
async fn fifty_invoices_issued_at_once_are_numbered_one_to_fifty() {
    let f = Fixture::new().await;
    let mut drafts = Vec::new();
    for _ in 0..50 {
        drafts.push(draft(&f, vec![line("Seat", 1, 100)]).await.unwrap().id);
    }
    // Two apps, as two instances: their issues race in the database, not only in a process.
    let other = App::new(f.pool.clone());
    let issues = drafts.iter().enumerate().map(|(i, id)| {
        let app = if i % 2 == 0 {
            f.app.clone()
        } else {
            other.clone()
        };
        let metadata = f.metadata.clone();
        let id = id.clone();
        async move { app.finalize_invoice(&metadata, &id).await }
    });
    let mut numbers: Vec<String> = join_all(issues)
        .await
        .into_iter()
        .map(|issued| issued.expect("issued").number.expect("a number"))
        .collect();
    numbers.sort();
    let expected: Vec<String> = (1..=50).map(|n| format!("INV-{n:04}")).collect();
    assert_eq!(numbers, expected);
    let series = f.app.invoice_numbering(f.principal()).await.unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(
        (series[0].first, series[0].last, series[0].count),
        (1, 50, 50)
    );
}

/// Issues render their documents ahead of their turn with the number they will likely get
/// (`document_series.rs`); some guesses come out wrong here, since a second finalize of a
/// draft queues for the turn too and then takes no number. Each issue still records its own
/// document's digest: every one downloads, checked against it, from a process that
/// rendered nothing yet.
#[tokio::test]
async fn invoices_issued_at_once_each_record_their_own_documents_digest() {
    let f = Fixture::new().await;
    // A first claim makes the series' last number known, so the issues below render ahead.
    let first = issued(&f, 100).await;
    let mut ids = Vec::new();
    for n in 0..24 {
        let id = draft(&f, vec![line("Seat", 1, 100 + n)]).await.unwrap().id;
        if n % 8 == 3 {
            ids.push(id.clone());
        }
        ids.push(id);
    }
    let issues = ids.iter().map(|id| {
        let app = f.app.clone();
        let metadata = f.metadata.clone();
        let id = id.clone();
        async move { app.finalize_invoice(&metadata, &id).await }
    });
    let (issued, refused): (Vec<_>, Vec<_>) =
        join_all(issues).await.into_iter().partition(Result::is_ok);
    assert_eq!((issued.len(), refused.len()), (24, 3));
    for refusal in refused {
        assert!(
            matches!(&refusal, Err(AppError::Conflict { message, .. }) if message == "Invoice is already issued"),
            "{:?}",
            refusal.map(|invoice| invoice.id)
        );
    }
    let fresh = App::new(f.pool.clone());
    for invoice in issued.into_iter().map(Result::unwrap).chain([first]) {
        let pdf = fresh
            .invoice_pdf(f.principal(), &invoice.id)
            .await
            .expect("renders as its issue recorded");
        let events = stored_events(&f, &invoice.id).await;
        assert_eq!(events[1]["InvoiceIssued"]["pdfSha256"], json!(pdf.sha256));
    }
    let series = f.app.invoice_numbering(f.principal()).await.unwrap();
    assert_eq!(
        (series[0].first, series[0].last, series[0].count),
        (1, 25, 25)
    );
}

/// Each instance remembers the last number it claimed; one that another instance has passed
/// since collides on its next claim and takes the number after the other's.
#[tokio::test]
async fn an_instance_behind_another_on_the_series_takes_the_next_number_not_an_old_one() {
    let f = Fixture::new().await;
    let other = App::new(f.pool.clone());
    let mut numbers = Vec::new();
    for app in [&f.app, &other, &f.app, &f.app, &other] {
        let draft = draft(&f, vec![line("Seat", 1, 100)]).await.unwrap();
        let issued = app.finalize_invoice(&f.metadata, &draft.id).await.unwrap();
        numbers.push(issued.number.expect("a number"));
    }
    assert_eq!(
        numbers,
        ["INV-0001", "INV-0002", "INV-0003", "INV-0004", "INV-0005"]
    );
}

#[tokio::test]
async fn voiding_an_issued_invoice_issues_its_cancellation() {
    let f = Fixture::new().await;
    let invoice = issued(&f, 1000).await;
    let cancellation = f.app.void_invoice(&f.metadata, &invoice.id).await.unwrap();
    assert_eq!(cancellation.document_type, "cancellation");
    assert_eq!(cancellation.number.as_deref(), Some("CAN-0001"));
    assert_eq!(cancellation.total_amount_cents, -2000);
    assert_eq!(
        cancellation.original_invoice_id.as_deref(),
        Some(invoice.id.as_str())
    );
    let original = f.app.invoice(f.principal(), &invoice.id).await.unwrap();
    assert_eq!(original.status, "void");
    assert_eq!(original.amount_due_cents(), 0);
    assert_eq!(
        original.adjustments[0]["invoiceId"],
        cancellation.id.as_str()
    );
}

#[tokio::test]
async fn a_draft_is_voided_without_a_number() {
    let f = Fixture::new().await;
    let draft = draft(&f, vec![line("Seat", 1, 100)]).await.unwrap();
    let voided = f.app.void_invoice(&f.metadata, &draft.id).await.unwrap();
    assert_eq!((voided.status.as_str(), voided.number), ("void", None));
    assert!(f
        .app
        .invoice_numbering(f.principal())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn credit_notes_never_credit_more_than_is_left() {
    let f = Fixture::new().await;
    let invoice = issued(&f, 1000).await;
    let first = f
        .app
        .credit_invoice(
            &f.metadata,
            &invoice.id,
            Some(1500),
            Some("Goodwill".into()),
        )
        .await
        .unwrap();
    assert_eq!(first.document_type, "credit_note");
    assert_eq!(first.number.as_deref(), Some("CN-0001"));
    assert_eq!(first.total_amount_cents, -1500);
    let too_much = f
        .app
        .credit_invoice(&f.metadata, &invoice.id, Some(501), Some("More".into()))
        .await;
    assert!(
        matches!(&too_much, Err(AppError::Invalid { message: m, .. }) if m == "Credit note amount exceeds what is left to credit"),
        "{too_much:?}"
    );
    for blank in [None, Some("  ".to_owned())] {
        let unexplained = f
            .app
            .credit_invoice(&f.metadata, &invoice.id, None, blank)
            .await;
        assert!(
            matches!(&unexplained, Err(AppError::Invalid { message: m, .. }) if m == "reason is required"),
            "{unexplained:?}"
        );
    }
    let rest = f
        .app
        .credit_invoice(&f.metadata, &invoice.id, None, Some("The rest".into()))
        .await
        .unwrap();
    assert_eq!(
        (rest.number.as_deref(), rest.total_amount_cents),
        (Some("CN-0002"), -500)
    );
    let original = f.app.invoice(f.principal(), &invoice.id).await.unwrap();
    assert_eq!(original.credited_cents, 2000);
}

#[tokio::test]
async fn bad_drafts_are_refused_and_make_nothing() {
    let f = Fixture::new().await;
    for (lines, message) in [
        (vec![], "An invoice needs at least one line"),
        (
            vec![line("Seat", 1, -5)],
            "Line 1: unit amount must be between 0 and 10000000000 cents",
        ),
        (
            vec![line("Seat", 0, 5)],
            "Line 1: quantity must be between 1 and 1000000",
        ),
        (vec![line(" ", 1, 5)], "Line 1: description is required"),
    ] {
        let refused = draft(&f, lines).await;
        assert!(
            matches!(&refused, Err(AppError::Invalid { message: m, .. }) if m == message),
            "{message}: {refused:?}"
        );
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM invoice_list")
        .fetch_one(&f.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn another_tenants_invoice_is_not_found() {
    let f = Fixture::new().await;
    let invoice = issued(&f, 1000).await;
    let other = Fixture::new().await;
    let mut stranger = other.principal().clone();
    stranger.tenant = domain::tenant::Tenant::new("merchant_other", domain::tenant::Mode::Test);
    let found = f.app.invoice(&stranger, &invoice.id).await;
    assert!(
        matches!(&found, Err(AppError::NotFound(m)) if m == "Invoice not found"),
        "{found:?}"
    );
}

#[tokio::test]
async fn a_void_cut_between_its_steps_issues_the_cancellation_on_resume() {
    let f = Fixture::new().await;
    let invoice = issued(&f, 1000).await;
    let dying = App::new(f.pool.clone()).with_death(DeathPlan {
        kind: "invoice.adjust".into(),
        after_commits: 1,
        abort: false,
    });
    let metadata = f.metadata.clone();
    let id = invoice.id.clone();
    let died = tokio::spawn({
        let dying = dying.clone();
        async move { dying.void_invoice(&metadata, &id).await }
    })
    .await;
    assert!(died.is_err_and(|e| e.is_panic()));
    dying.instance.stop_living().await;
    let original = f.app.invoice(f.principal(), &invoice.id).await.unwrap();
    assert_eq!(original.status, "void", "the first step happened");
    assert!(f
        .app
        .invoice_numbering(f.principal())
        .await
        .unwrap()
        .iter()
        .all(|s| s.series != "CAN"));

    assert_eq!(f.app.resume_abandoned_flows().await.unwrap(), 1);
    let cancellation_id = original.adjustments[0]["invoiceId"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancellation = f
        .app
        .invoice(f.principal(), &cancellation_id)
        .await
        .unwrap();
    assert_eq!(cancellation.number.as_deref(), Some("CAN-0001"));
    assert_eq!(cancellation.total_amount_cents, -2000);
}

/// The events of aggregate `id`, as stored.
async fn stored_events(f: &Fixture, id: &str) -> Vec<serde_json::Value> {
    sqlx::query_scalar::<_, serde_json::Value>(
        "SELECT payload FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(&f.pool)
    .await
    .expect("read the invoice's events")
}

#[tokio::test]
async fn each_document_records_the_digest_of_its_pdf_and_renders_to_it_again() {
    let f = Fixture::new().await;
    let customer = f.customer("zoe@example.com").await;
    let changes = |name: &str, city: &str| CustomerChanges {
        fields: CustomerFields {
            name: Some(Some(name.to_owned())),
            billing_city: Some(Some(city.to_owned())),
            ..CustomerFields::default()
        },
        ..CustomerChanges::default()
    };
    f.app
        .update_customer(
            &f.metadata,
            customer.as_str(),
            changes("Zoë Łukasiewicz", "Kraków"),
        )
        .await
        .unwrap();
    f.card(&customer, "4242").await;
    let draft = f
        .app
        .create_invoice(
            &f.metadata,
            NewInvoice {
                customer_id: Some(customer.to_string()),
                currency: Some("eur".into()),
                lines: Some(vec![line("Consulting", 2, 1500)]),
            },
        )
        .await
        .unwrap();
    let issued = f
        .app
        .finalize_invoice(&f.metadata, &draft.id)
        .await
        .unwrap();
    let pdf = f.app.invoice_pdf(f.principal(), &issued.id).await.unwrap();
    let events = stored_events(&f, &issued.id).await;
    let issue = &events[1]["InvoiceIssued"];
    assert_eq!(issue["pdfSha256"], json!(sha256_hex(&pdf.bytes)));
    assert_eq!(pdf.sha256, sha256_hex(&pdf.bytes));
    assert_eq!(issue["header"]["customerName"], "Zoë Łukasiewicz");
    assert_eq!(issue["header"]["addressLines"], json!(["Kraków"]));

    // The customer moves after the issue: the issued document does not.
    f.app
        .update_customer(&f.metadata, customer.as_str(), changes("Zoë Ł.", "Gdańsk"))
        .await
        .unwrap();
    // A new process (no cached PDF) renders it from the log, byte for byte.
    let later = App::new(f.pool.clone());
    let again = later.invoice_pdf(f.principal(), &issued.id).await.unwrap();
    assert_eq!(again.bytes, pdf.bytes);

    // Paid, the document shows it: a new PDF, the same bytes on every download (a new
    // process, or this one's cache), its digest not recorded (no render per payment).
    f.app.pay_invoice(&f.metadata, &issued.id).await.unwrap();
    let paid = later.invoice_pdf(f.principal(), &issued.id).await.unwrap();
    assert_ne!(paid.bytes, pdf.bytes);
    assert_eq!(paid.sha256, sha256_hex(&paid.bytes));
    let cached = later.invoice_pdf(f.principal(), &issued.id).await.unwrap();
    assert_eq!(cached.bytes, paid.bytes);
    assert_eq!(cached.sha256, paid.sha256);
    let fresh = App::new(f.pool.clone());
    let again = fresh.invoice_pdf(f.principal(), &issued.id).await.unwrap();
    assert_eq!(again.bytes, paid.bytes);
    let events = stored_events(&f, &issued.id).await;
    let paid_event = events
        .iter()
        .find_map(|event| event.get("InvoicePaid"))
        .expect("an InvoicePaid event");
    assert_eq!(paid_event["pdfSha256"], json!(null));
}

#[tokio::test]
async fn a_paid_document_is_refused_when_its_issued_edition_no_longer_renders_as_recorded() {
    let f = Fixture::new().await;
    let invoice = issued(&f, 700).await;
    let customer = domain::id::CustomerId::parse(&invoice.customer_id).expect("a customer id");
    f.card(&customer, "4242").await;
    f.app.pay_invoice(&f.metadata, &invoice.id).await.unwrap();
    let fresh = App::new(f.pool.clone());
    fresh
        .invoice_pdf(f.principal(), &invoice.id)
        .await
        .expect("the paid edition renders");
    // As if the renderer had changed since the issue.
    alter_issued_digest(&f, &invoice.id).await;
    assert_refused_as_changed(&f, &invoice.id).await;
}

/// Records another digest for the issued document than the one it renders to.
async fn alter_issued_digest(f: &Fixture, invoice_id: &str) {
    sqlx::query(
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{InvoiceIssued,pdfSha256}', to_jsonb($2::text))::json \
         WHERE aggregate_id = $1 AND event_type = 'InvoiceIssued'",
    )
    .bind(invoice_id)
    .bind("0".repeat(64))
    .execute(&f.pool)
    .await
    .expect("alter the recorded digest");
}

/// A new process (nothing cached) refuses the invoice's PDF: it no longer renders as issued.
async fn assert_refused_as_changed(f: &Fixture, invoice_id: &str) {
    let refused = App::new(f.pool.clone())
        .invoice_pdf(f.principal(), invoice_id)
        .await;
    assert!(
        matches!(&refused, Err(AppError::Internal(message)) if message == "The document no longer renders as it was issued"),
        "{:?}",
        refused.map(|pdf| pdf.sha256)
    );
}

#[tokio::test]
async fn a_document_that_no_longer_renders_as_recorded_is_refused() {
    let f = Fixture::new().await;
    let invoice = issued(&f, 700).await;
    // As if the renderer had changed since: the recorded digest is not what renders now.
    alter_issued_digest(&f, &invoice.id).await;
    assert_refused_as_changed(&f, &invoice.id).await;
}

/// Documents issued before the current renderer record none (or another): each is drawn
/// again by the renderer that drew it, its paid edition too, and checked against its digest.
#[tokio::test]
async fn a_document_is_drawn_again_by_the_renderer_that_issued_it() {
    let f = Fixture::new().await;
    let invoice = issued(&f, 700).await;
    let events = stored_events(&f, &invoice.id).await;
    assert_eq!(
        events[1]["InvoiceIssued"]["pdfRenderer"],
        json!(Renderer::CURRENT.number())
    );
    let current = f.app.invoice_pdf(f.principal(), &invoice.id).await.unwrap();

    // As issued before a second renderer existed: no renderer recorded, renderer 1's digest.
    let aggregate = f.app.invoices.current(&invoice.id).await.unwrap();
    let document = document_of(&aggregate).expect("an issued document");
    let first = documents::render(&document, Renderer::KrillaSubsets).unwrap();
    assert_ne!(first, *current.bytes, "the renderers write different files");
    sqlx::query(
        "UPDATE events SET payload = (jsonb_set(payload::jsonb, '{InvoiceIssued,pdfSha256}', \
         to_jsonb($2::text)) #- '{InvoiceIssued,pdfRenderer}')::json \
         WHERE aggregate_id = $1 AND event_type = 'InvoiceIssued'",
    )
    .bind(&invoice.id)
    .bind(sha256_hex(&first))
    .execute(&f.pool)
    .await
    .expect("record the issue as renderer 1 did");
    let fresh = App::new(f.pool.clone());
    let again = fresh.invoice_pdf(f.principal(), &invoice.id).await.unwrap();
    assert!(*again.bytes == first, "drawn by renderer 1 again");
    assert_eq!(again.sha256, sha256_hex(&first));

    // Paid: the paid edition is drawn by renderer 1 too, checked against the issue's digest.
    let customer = domain::id::CustomerId::parse(&invoice.customer_id).expect("a customer id");
    f.card(&customer, "4242").await;
    f.app.pay_invoice(&f.metadata, &invoice.id).await.unwrap();
    let paid = App::new(f.pool.clone())
        .invoice_pdf(f.principal(), &invoice.id)
        .await
        .unwrap();
    let aggregate = f.app.invoices.current(&invoice.id).await.unwrap();
    let paid_document = document_of(&aggregate).expect("a paid document");
    assert!(
        *paid.bytes == documents::render(&paid_document, Renderer::KrillaSubsets).unwrap(),
        "the paid edition drawn by renderer 1"
    );
}

#[tokio::test]
async fn a_merchants_own_prefixes_name_its_series_and_stay_once_it_has_numbers() {
    let f = Fixture::new().await;
    let own = NumberPrefixes {
        invoice: "ACME".into(),
        cancellation: "ACME-CAN".into(),
        credit_note: "ACME-CN".into(),
    };
    set_number_prefixes(&f.pool, &f.merchant_id, &own)
        .await
        .expect("set the prefixes before any number");
    let invoice = issued(&f, 700).await;
    assert_eq!(invoice.number.as_deref(), Some("ACME-0001"));
    let cancellation = f.app.void_invoice(&f.metadata, &invoice.id).await.unwrap();
    assert_eq!(cancellation.number.as_deref(), Some("ACME-CAN-0001"));
    let second = issued(&f, 800).await;
    assert_eq!(second.number.as_deref(), Some("ACME-0002"));
    let series: Vec<(String, i32, i64)> = f
        .app
        .invoice_numbering(f.principal())
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.series, s.last, s.count))
        .collect();
    assert_eq!(
        series,
        vec![("ACME".to_owned(), 2, 2), ("ACME-CAN".to_owned(), 1, 1)]
    );
    // Renaming now would split a series in two: refused, and the numbers go on as they were.
    let renamed = NumberPrefixes {
        invoice: "NEW".into(),
        ..own
    };
    assert!(set_number_prefixes(&f.pool, &f.merchant_id, &renamed)
        .await
        .is_err());
    assert_eq!(issued(&f, 900).await.number.as_deref(), Some("ACME-0003"));
}

#[tokio::test]
async fn two_pays_of_one_invoice_racing_charge_it_once() {
    let f = Fixture::new().await;
    let customer = f.customer("double-click@example.com").await;
    f.card(&customer, "4242").await;
    let draft = f
        .app
        .create_invoice(
            &f.metadata,
            NewInvoice {
                customer_id: Some(customer.to_string()),
                currency: Some("usd".into()),
                lines: Some(vec![line("Support", 1, 5000)]),
            },
        )
        .await
        .unwrap();
    f.app
        .finalize_invoice(&f.metadata, &draft.id)
        .await
        .unwrap();
    // Two apps, as two instances behind a load balancer: a double click.
    let other = App::new(f.pool.clone());
    let (first, second) = tokio::join!(
        f.app.pay_invoice(&f.metadata, &draft.id),
        other.pay_invoice(&f.metadata, &draft.id),
    );
    // Each is answered paid (the same charge, when both took the same attempt) or refused
    // while the other's charge is live; never a second charge.
    for outcome in [&first, &second] {
        assert!(
            match outcome {
                Ok(invoice) => invoice.status == "paid",
                Err(AppError::Conflict { message, .. }) => {
                    message == app::charges::CHARGE_IN_PROGRESS
                        || message == "Invoice is already paid"
                }
                Err(_) => false,
            },
            "{outcome:?}"
        );
    }
    let succeeded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payment_list WHERE invoice_id = $1 AND status = 'succeeded'",
    )
    .bind(&draft.id)
    .fetch_one(&f.pool)
    .await
    .unwrap();
    assert_eq!(succeeded, 1);
}
