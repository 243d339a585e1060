//! Invoices, payments and the test clock over HTTP: a draft issued and voided with its
//! cancellation, gapless numbering, the PDF (the same bytes each time, its text readable with
//! non-ASCII intact), a manual pay declined then paid, a subscription billed through a month
//! of the test clock, and the refusals that change nothing.

use std::process::Command;

use billstream_tests::billing::Billing;
use billstream_tests::{assert_error, TestApp};
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::Method;
use serde_json::{json, Value};

async fn customer(app: &TestApp, name: &str) -> String {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    app.create_customer(
        json!({"email": email, "name": name, "billingCity": "İstanbul",
        "taxId": "TR-1234567890"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn draft(app: &TestApp, customer: &str) -> Value {
    let (status, body) = app
        .post(
            "/v1/invoices",
            json!({"customerId": customer, "currency": "EUR", "lines": [
                {"description": "Consulting (Zürich)", "quantity": 3, "unitAmountCents": 12500},
                {"description": "Setup", "unitAmountCents": 5000},
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["invoice"].clone()
}

async fn finalize(app: &TestApp, id: &str) -> Value {
    let (status, body) = app
        .post(&format!("/v1/invoices/{id}/finalize"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    body["invoice"].clone()
}

#[tokio::test]
async fn a_draft_is_issued_numbered_and_voided_with_its_cancellation() {
    let app = TestApp::spawn().await;
    let customer = customer(&app, "Zoë Łukasiewicz").await;
    let draft = draft(&app, &customer).await;
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["number"], Value::Null);
    assert_eq!(draft["totalAmountCents"], 42500);
    assert_eq!(draft["lines"][1]["quantity"], 1);
    assert_eq!(draft["pdfUrl"], Value::Null);
    let id = draft["id"].as_str().unwrap();

    let issued = finalize(&app, id).await;
    assert_eq!(issued["number"], "INV-0001");
    assert_eq!(issued["amountDueCents"], 42500);
    assert!(issued["pdfUrl"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v1/invoices/{id}/pdf")));
    let again = app
        .post(&format!("/v1/invoices/{id}/finalize"), json!({}))
        .await;
    assert_error(&again, 409, "Invoice is already issued");

    let (status, voided) = app
        .post(&format!("/v1/invoices/{id}/void"), json!({}))
        .await;
    assert_eq!(status, 200, "{voided}");
    let cancellation = &voided["invoice"];
    assert_eq!(cancellation["documentType"], "cancellation");
    assert_eq!(cancellation["number"], "CAN-0001");
    assert_eq!(cancellation["totalAmountCents"], -42500);
    assert_eq!(cancellation["originalInvoiceId"], id);
    let (_, original) = app.get(&format!("/v1/invoices/{id}")).await;
    assert_eq!(original["invoice"]["status"], "void");
    assert_eq!(
        original["invoice"]["adjustmentInvoices"][0]["invoiceId"],
        cancellation["id"]
    );

    let (status, listed) = app
        .get(&format!(
            "/v1/invoices?customerId={customer}&documentType=standard"
        ))
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["invoices"].as_array().unwrap().len(), 1);
    let (_, numbering) = app.get("/v1/invoices/numbering").await;
    assert_eq!(
        numbering["series"],
        json!([
            {"series": "CAN", "first": 1, "last": 1, "count": 1, "gapless": true},
            {"series": "INV", "first": 1, "last": 1, "count": 1, "gapless": true},
        ])
    );
}

#[tokio::test]
async fn bad_invoices_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let customer = customer(&app, "Bad").await;
    let cases = [
        (
            json!({"customerId": customer, "currency": "USD", "lines": []}),
            "An invoice needs at least one line",
        ),
        (
            json!({"customerId": customer, "currency": "USD",
            "lines": [{"description": "X", "unitAmountCents": -1}]}),
            "Line 1: unit amount must be between 0 and 10000000000 cents",
        ),
        (
            json!({"customerId": customer, "currency": "DOLLARS",
            "lines": [{"description": "X", "unitAmountCents": 1}]}),
            "Currency must be a three-letter ISO 4217 code",
        ),
        (
            json!({"customerId": customer, "currency": "XYZ",
            "lines": [{"description": "X", "unitAmountCents": 1}]}),
            "Currency must be a three-letter ISO 4217 code",
        ),
        (
            json!({"customerId": customer, "currency": "USD",
            "lines": [{"description": "X", "quantity": 0, "unitAmountCents": 1}]}),
            "Line 1: quantity must be between 1 and 1000000",
        ),
        (
            json!({"customerId": customer, "currency": "USD",
            "lines": [{"description": "X", "quantity": 1000001, "unitAmountCents": 1}]}),
            "Line 1: quantity must be between 1 and 1000000",
        ),
    ];
    for (body, message) in cases {
        let refused = app.post("/v1/invoices", body).await;
        assert_error(&refused, 400, message);
    }
    let fractional = app
        .post(
            "/v1/invoices",
            json!({"customerId": customer, "currency": "USD",
                "lines": [{"description": "X", "unitAmountCents": 10.5}]}),
        )
        .await;
    assert_eq!(fractional.0, 400, "{}", fractional.1);
    let (_, listed) = app.get("/v1/invoices").await;
    assert_eq!(listed["invoices"], json!([]));

    // Another merchant's invoice is not found, not even by its id.
    let other = app.other_merchant().await;
    let issued = finalize(&app, draft(&app, &customer).await["id"].as_str().unwrap()).await;
    let id = issued["id"].as_str().unwrap();
    let path = format!("/v1/invoices/{id}");
    assert_error(
        &app.get_as(&other.test_secret_key, &path).await,
        404,
        "Invoice not found",
    );

    // Credit notes: a positive whole amount, never more than is left, with a reason.
    let notes = format!("/v1/invoices/{id}/credit-notes");
    let refused = [
        (json!({"amountCents": -5, "reason": "x"}), 400),
        (json!({"amountCents": 0, "reason": "x"}), 400),
        (json!({"amountCents": 10.5, "reason": "x"}), 400),
        (json!({"amountCents": 42501, "reason": "x"}), 400),
        (json!({"amountCents": 100}), 400),
        (json!({"amountCents": 100, "reason": " "}), 400),
    ];
    for (body, status) in refused {
        let answer = app.post(&notes, body.clone()).await;
        assert_eq!(answer.0, status, "{body}: {}", answer.1);
        assert!(answer.1["error"].is_string(), "{body}: {}", answer.1);
    }
    let (_, listed) = app.get("/v1/invoices?documentType=credit_note").await;
    assert_eq!(
        listed["invoices"],
        json!([]),
        "a refused credit note made nothing"
    );

    // A void invoice is not paid, and changes nothing by being asked.
    let (status, body) = app.post(&format!("{path}/void"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_error(
        &app.post(&format!("{path}/pay"), json!({})).await,
        409,
        "Only an issued invoice with something due can be paid",
    );
    let (_, payments) = app.get(&format!("/v1/payments?invoiceId={id}")).await;
    assert_eq!(payments["payments"], json!([]));
    let (_, invoice) = app.get(&path).await;
    assert_eq!(invoice["invoice"]["status"], "void");
}

#[tokio::test]
async fn the_pdf_is_the_same_bytes_each_time_and_reads_as_the_invoice() {
    let app = TestApp::spawn().await;
    let customer = customer(&app, "Zoë Łukasiewicz").await;
    let draft = draft(&app, &customer).await;
    let id = draft["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/invoices/{id}/pdf");
    let early = app.get(&path).await;
    assert_error(&early, 409, "A draft has no PDF; finalize it first");
    finalize(&app, &id).await;

    let download = || async {
        let response = app.request(Method::GET, &path).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        (headers, response.bytes().await.unwrap().to_vec())
    };
    let (headers, first) = download().await;
    let (_, second) = download().await;
    assert_eq!(headers[CONTENT_TYPE], "application/pdf");
    assert_eq!(
        headers[CONTENT_DISPOSITION],
        "attachment; filename=\"INV-0001.pdf\""
    );
    assert!(first.starts_with(b"%PDF-"));
    assert_eq!(first, second, "the same bytes on every download");
    let etag = headers[ETAG].to_str().unwrap().to_owned();
    let cached = app
        .request(Method::GET, &path)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);

    let file = std::env::temp_dir().join(format!("{id}.pdf"));
    std::fs::write(&file, &first).unwrap();
    billstream_tests::test_deps::ensure(|| billstream_tests::test_deps::on_path("pdftotext"));
    let text = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (apt-get install -y poppler-utils)");
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&text.stdout);
    for expected in [
        "INV-0001",
        "Invoice",
        "Zoë Łukasiewicz",
        "İstanbul",
        "TR-1234567890",
        "Consulting (Zürich)",
        "Setup",
        "€425.00",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}

#[tokio::test]
async fn a_manual_pay_is_declined_with_the_cards_message_then_paid() {
    let app = TestApp::spawn().await;
    let billing = Billing::new(&app);
    let customer = customer(&app, "Payer").await;
    billing.card(&customer, "0341").await;
    let issued = finalize(&app, draft(&app, &customer).await["id"].as_str().unwrap()).await;
    let id = issued["id"].as_str().unwrap();
    let declined = app.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
    assert_error(&declined, 402, "Your card was declined.");
    let (_, payments) = app.get(&format!("/v1/payments?invoiceId={id}")).await;
    assert_eq!(payments["payments"][0]["status"], "failed");
    assert_eq!(payments["payments"][0]["errorCode"], "card_declined");

    billing.card(&customer, "4242").await;
    let (status, paid) = app.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["invoice"]["status"], "paid");
    assert_eq!(paid["invoice"]["paymentStatus"], "succeeded");
    assert_eq!(paid["invoice"]["amountDueCents"], 0);
    let again = app.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
    assert_error(&again, 409, "Invoice is already paid");
    // A paid invoice is corrected by a credit note, not voided.
    let void = app
        .post(&format!("/v1/invoices/{id}/void"), json!({}))
        .await;
    assert_error(
        &void,
        409,
        "A paid invoice cannot be voided; issue a credit note",
    );
    let (status, credit) = app
        .post(
            &format!("/v1/invoices/{id}/credit-notes"),
            json!({"amountCents": 500, "reason": "Goodwill"}),
        )
        .await;
    assert_eq!(status, 201, "{credit}");
    assert_eq!(credit["invoice"]["number"], "CN-0001");
    // The invoice was paid: the credit note's amount went back through the provider.
    let (_, payments) = app.get(&format!("/v1/payments?invoiceId={id}")).await;
    let refund = &payments["payments"][0];
    assert_eq!(refund["type"], "refund", "{payments}");
    assert_eq!(refund["amountCents"], -500);
    assert_eq!(refund["status"], "succeeded");
    let (_, listed) = app.get("/v1/customers?includePaymentData=true").await;
    let payer = listed["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == customer.as_str())
        .unwrap()
        .clone();
    assert_eq!(payer["totalPaymentsCents"], 42500 - 500, "{payer}");
    assert_eq!(payer["paymentCount"], 1, "a refund is no payment");
}

#[tokio::test]
async fn the_test_clock_runs_a_month_of_billing_and_never_goes_back() {
    let app = TestApp::spawn().await;
    let (status, clock) = app.get("/v1/test-clock").await;
    assert_eq!(status, 200, "{clock}");
    let now = billstream_tests::timestamp(&clock["testClock"]["now"]);
    let live = app.get_as(app.live_key(), "/v1/test-clock").await;
    assert_error(&live, 404, "Test clocks exist only in test mode");
    let back = app
        .post(
            "/v1/test-clock/advance",
            json!({"to": (now - chrono::Duration::days(1)).to_rfc3339()}),
        )
        .await;
    assert_error(
        &back,
        400,
        "The test clock never goes back: `to` must not be before its now",
    );
    let live_advance = app
        .post_as(
            app.live_key(),
            "/v1/test-clock/advance",
            json!({"to": (now + chrono::Duration::days(30)).to_rfc3339()}),
        )
        .await;
    assert_error(&live_advance, 404, "Test clocks exist only in test mode");
    for bad in [json!({"to": "next tuesday"}), json!({}), json!({"to": 5})] {
        let refused = app.post("/v1/test-clock/advance", bad.clone()).await;
        assert_eq!(refused.0, 400, "{bad}: {}", refused.1);
    }
    // None of these moved it: it reads where it was, a little later by the wall clock.
    let (_, after) = app.get("/v1/test-clock").await;
    let after = billstream_tests::timestamp(&after["testClock"]["now"]);
    assert!(
        after >= now && after - now < chrono::Duration::minutes(1),
        "{now} then {after}"
    );

    let customer = customer(&app, "Monthly").await;
    let card = Billing::new(&app).card(&customer, "4242").await;
    let (status, plan) = app
        .post(
            "/v1/plans",
            json!({"name": "Pro", "currency": "USD", "interval": "month",
                "pricingData": {"components": [{"type": "flat", "name": "Pro", "amountCents": 2900}]}}),
        )
        .await;
    assert_eq!(status, 201, "{plan}");
    assert_eq!(plan["plan"]["interval"], "month");
    let (status, started) = app
        .post(
            "/v1/subscriptions",
            json!({"customerId": customer, "planId": plan["plan"]["id"], "paymentMethodId": card}),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let subscription = &started["subscription"];
    assert_eq!(subscription["status"], "active");
    assert_eq!(subscription["quantity"], 1);
    let period_end = billstream_tests::timestamp(&subscription["currentPeriodEnd"]);

    let to = period_end + chrono::Duration::hours(1);
    let (status, advanced) = app
        .post("/v1/test-clock/advance", json!({"to": to.to_rfc3339()}))
        .await;
    assert_eq!(status, 200, "{advanced}");
    assert!(billstream_tests::timestamp(&advanced["testClock"]["now"]) >= to);
    let (_, invoices) = app
        .get(&format!("/v1/invoices?customerId={customer}"))
        .await;
    let invoices = invoices["invoices"].as_array().unwrap().clone();
    assert_eq!(invoices.len(), 2, "{invoices:?}");
    assert!(invoices.iter().all(|i| i["status"] == "paid"));
    assert_eq!(invoices[0]["number"], "INV-0002", "newest first");
    // The payment-aggregate read model: two succeeded charges of $29.
    let (_, listed) = app.get("/v1/customers?includePaymentData=true").await;
    let payer = listed["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == customer.as_str())
        .unwrap()
        .clone();
    assert_eq!(payer["totalPaymentsCents"], 5800, "{payer}");
    assert_eq!(payer["paymentCount"], 2);
    assert_eq!(payer["currency"], "USD");
    let (_, renewed) = app
        .get(&format!(
            "/v1/subscriptions/{}",
            subscription["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        renewed["subscription"]["currentPeriodStart"],
        subscription["currentPeriodEnd"]
    );
    assert_eq!(
        renewed["subscription"]["latestInvoiceId"],
        invoices[0]["id"]
    );
}

/// A portal session for the customer with external id `external_id`.
async fn session(app: &TestApp, external_id: &str) -> String {
    let (status, body) = app
        .post(
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": external_id}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["session"]["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_portal_shows_its_customers_invoices_and_payments_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let billing = Billing::new(&app);
    let mut ids = Vec::new();
    for external in ["user_a", "user_b"] {
        let email = format!("{external}@example.com");
        let customer = app
            .create_customer(json!({"email": email, "externalCustomerId": external}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        billing.card(&customer, "0341").await;
        let issued = finalize(&app, draft(&app, &customer).await["id"].as_str().unwrap()).await;
        let id = issued["id"].as_str().unwrap().to_owned();
        // Declined: a failed payment with its message.
        let declined = app.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
        assert_eq!(declined.0, 402, "{}", declined.1);
        ids.push(id);
    }
    let token = session(&app, "user_a").await;
    let (status, overview) = app.get_as(&token, "/v1/customers/portal/overview").await;
    assert_eq!(status, 200, "{overview}");
    let invoices = overview["portal"]["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 1, "{overview}");
    assert_eq!(invoices[0]["id"], ids[0].as_str());
    assert_eq!(invoices[0]["number"], "INV-0001");
    assert_eq!(invoices[0]["documentType"], "standard");
    let payments = overview["portal"]["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["status"], "failed");
    assert_eq!(payments[0]["errorMessage"], "Your card was declined.");

    let (status, paged) = app
        .get_as(&token, "/v1/customers/portal/invoices?limit=1")
        .await;
    assert_eq!(status, 200, "{paged}");
    assert_eq!(paged["invoices"].as_array().unwrap().len(), 1);
    assert_eq!(paged["hasMore"], false);
    let (status, paged) = app.get_as(&token, "/v1/customers/portal/payments").await;
    assert_eq!(status, 200, "{paged}");
    assert_eq!(paged["payments"][0]["errorCode"], "card_declined");
    // A secret key names the customer.
    let (status, by_key) = app
        .get("/v1/customers/portal/invoices?externalCustomerId=user_b")
        .await;
    assert_eq!(status, 200, "{by_key}");
    assert_eq!(by_key["invoices"][0]["id"], ids[1].as_str());

    // Its own PDF through the overview's link; another customer's is not found.
    let own = invoices[0]["pdfUrl"].as_str().unwrap();
    let path = &own[own.find("/v1/").unwrap()..];
    let response = app
        .request_as(&token, Method::GET, path)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let stranger = app
        .get_as(&token, &format!("/v1/invoices/{}/pdf", ids[1]))
        .await;
    assert_error(&stranger, 404, "Invoice not found");
}

/// The service's own scheduler bills a renewal that fell due, with nobody asking: the test
/// clock is moved behind the service's back (as another instance would), and the renewal's
/// invoice appears within seconds.
#[tokio::test]
async fn the_running_scheduler_bills_a_renewal_with_nobody_asking() {
    let app = TestApp::spawn().await;
    let customer = customer(&app, "Scheduled").await;
    let card = Billing::new(&app).card(&customer, "4242").await;
    let (_, plan) = app
        .post(
            "/v1/plans",
            json!({"name": "Pro", "currency": "USD",
                "pricingData": {"components": [{"type": "flat", "amountCents": 1000}]}}),
        )
        .await;
    let (status, started) = app
        .post(
            "/v1/subscriptions",
            json!({"customerId": customer, "planId": plan["plan"]["id"], "paymentMethodId": card}),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    sqlx::query("INSERT INTO test_clocks (tenant, offset_us) VALUES ($1, $2)")
        .bind(format!("{}:test", app.merchant.merchant_id))
        .bind(chrono::Duration::days(40).num_microseconds().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, listed) = app
            .get(&format!("/v1/invoices?customerId={customer}&status=paid"))
            .await;
        if listed["invoices"].as_array().unwrap().len() == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewal was never billed: {listed}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn cancel_at_period_end_bills_no_further_period_and_totals_are_kept_per_currency() {
    let app = TestApp::spawn().await;
    let customer = customer(&app, "Two currencies").await;
    let card = Billing::new(&app).card(&customer, "4242").await;
    let (status, plan) = app
        .post(
            "/v1/plans",
            json!({"name": "Team", "currency": "EUR", "interval": "month",
                "pricingData": {"components": [
                    {"type": "per_seat", "name": "Seats", "unitAmountCents": 700}]}}),
        )
        .await;
    assert_eq!(status, 201, "{plan}");
    let (status, started) = app
        .post(
            "/v1/subscriptions",
            json!({"customerId": customer, "planId": plan["plan"]["id"],
                "paymentMethodId": card, "quantity": 4}),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let id = started["subscription"]["id"].as_str().unwrap().to_owned();
    for bad in [json!(0), json!(2.5), json!(1_000_001), json!("3")] {
        let refused = app
            .post(
                "/v1/subscriptions",
                json!({"customerId": customer, "planId": plan["plan"]["id"], "quantity": bad}),
            )
            .await;
        assert_eq!(refused.0, 400, "quantity {bad}: {}", refused.1);
    }

    let (status, canceling) = app
        .post(
            &format!("/v1/subscriptions/{id}/cancel"),
            json!({"atPeriodEnd": true}),
        )
        .await;
    assert_eq!(status, 200, "{canceling}");
    assert_eq!(canceling["subscription"]["status"], "active");
    assert_eq!(canceling["subscription"]["cancelAtPeriodEnd"], true);
    let period_end = billstream_tests::timestamp(&canceling["subscription"]["currentPeriodEnd"]);
    let to = period_end + chrono::Duration::days(40);
    let (status, body) = app
        .post("/v1/test-clock/advance", json!({"to": to.to_rfc3339()}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, ended) = app.get(&format!("/v1/subscriptions/{id}")).await;
    assert_eq!(ended["subscription"]["status"], "canceled", "{ended}");
    let (_, invoices) = app
        .get(&format!("/v1/invoices?customerId={customer}"))
        .await;
    let invoices = invoices["invoices"].as_array().unwrap().clone();
    assert_eq!(invoices.len(), 1, "only the first period: {invoices:?}");
    assert_eq!(invoices[0]["totalAmountCents"], 2800, "four seats at 7 EUR");

    // A dollar invoice paid after: two currencies, the latest leads.
    let (status, draft) = app
        .post(
            "/v1/invoices",
            json!({"customerId": customer, "currency": "USD", "lines": [
                {"description": "Onboarding", "unitAmountCents": 15000}]}),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let usd = draft["invoice"]["id"].as_str().unwrap().to_owned();
    finalize(&app, &usd).await;
    let (status, paid) = app
        .post(&format!("/v1/invoices/{usd}/pay"), json!({}))
        .await;
    assert_eq!(status, 200, "{paid}");
    let (_, listed) = app.get("/v1/customers?includePaymentData=true").await;
    let payer = listed["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == customer.as_str())
        .unwrap()
        .clone();
    assert_eq!(payer["currency"], "USD", "{payer}");
    assert_eq!(payer["totalPaymentsCents"], 15000, "{payer}");
    assert_eq!(payer["paymentCount"], 1, "{payer}");
    let mut totals: Vec<(String, i64, i64)> = payer["paymentTotals"]
        .as_array()
        .unwrap_or_else(|| panic!("paymentTotals: {payer}"))
        .iter()
        .map(|t| {
            (
                t["currency"].as_str().unwrap().to_owned(),
                t["totalPaymentsCents"].as_i64().unwrap(),
                t["paymentCount"].as_i64().unwrap(),
            )
        })
        .collect();
    totals.sort();
    assert_eq!(
        totals,
        vec![("EUR".to_owned(), 2800, 1), ("USD".to_owned(), 15000, 1)]
    );
}
