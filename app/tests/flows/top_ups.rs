//! Top-ups through their use-cases: a purchase charges the default card and only a succeeded
//! charge makes the paid invoice of one line and the grant; a declined card leaves a failed
//! payment and nothing else; no card, a quantity out of bounds or a top-up not offered on the
//! customer's plan change nothing; a purchase cut after any of its steps is finished once on
//! resume.

use app::flows::DeathPlan;
use app::top_ups::{NewTopUp, PurchaseOutcome};
use app::{App, AppError};
use domain::id::{CustomerId, TopUpId};
use projections::read_models::credit_balances::GrantView;
use projections::read_models::invoice_list::{InvoiceFilter, InvoiceListProjection, InvoiceView};
use projections::read_models::payment_list::{PaymentFilter, PaymentListProjection, PaymentView};

use crate::support::{assert_conflict, assert_not_found, Fixture};

/// 1,000 API calls for $5 a unit, offered on every USD plan, expiring after 30 days.
async fn top_up(f: &Fixture) -> TopUpId {
    f.app
        .create_top_up(
            &f.metadata,
            NewTopUp {
                feature_slug: Some("api_calls".into()),
                name: Some("1,000 API calls".into()),
                credits_per_unit: Some(1000),
                unit_amount_cents: Some(500),
                currency: Some("USD".into()),
                expires_after_days: Some(30),
                max_quantity: Some(10),
                ..NewTopUp::default()
            },
        )
        .await
        .expect("create a top-up")
        .id
}

async fn invoices(f: &Fixture, customer: &CustomerId) -> Vec<InvoiceView> {
    let filter = InvoiceFilter {
        customer_id: Some(customer.to_string()),
        ..InvoiceFilter::default()
    };
    InvoiceListProjection::list(&f.pool, f.tenant(), &filter, None, 100)
        .await
        .unwrap()
        .0
}

async fn payments(f: &Fixture, customer: &CustomerId) -> Vec<PaymentView> {
    let filter = PaymentFilter {
        customer_id: Some(customer.to_string()),
        ..PaymentFilter::default()
    };
    PaymentListProjection::list(&f.pool, f.tenant(), &filter, None, 100)
        .await
        .unwrap()
        .0
}

async fn grants(f: &Fixture, customer: &CustomerId) -> Vec<GrantView> {
    f.app
        .credit_grants(f.principal(), customer.as_str(), None)
        .await
        .unwrap()
}

/// Exactly one purchase of `quantity` units made everything it makes, once.
async fn assert_bought_once(f: &Fixture, customer: &CustomerId, quantity: i64, what: &str) {
    let payments = payments(f, customer).await;
    assert_eq!(payments.len(), 1, "{what}: one charge, {payments:?}");
    assert_eq!(payments[0].status, "succeeded", "{what}");
    assert_eq!(payments[0].amount_cents, 500 * quantity, "{what}");
    let invoices = invoices(f, customer).await;
    assert_eq!(invoices.len(), 1, "{what}: one invoice");
    assert_eq!(invoices[0].status, "paid", "{what}");
    assert_eq!(invoices[0].total_amount_cents, 500 * quantity, "{what}");
    assert_eq!(
        invoices[0].lines.as_array().map(Vec::len),
        Some(1),
        "{what}"
    );
    assert!(invoices[0].number.is_some(), "{what}: numbered");
    let grants = grants(f, customer).await;
    assert_eq!(grants.len(), 1, "{what}: one grant");
    assert_eq!(grants[0].source, "topup", "{what}");
    assert_eq!(grants[0].initial_amount, 1000 * quantity, "{what}");
    assert_eq!(
        grants[0].reference_code.as_deref(),
        Some(invoices[0].id.as_str()),
        "{what}: the grant names its invoice"
    );
}

#[tokio::test]
async fn a_purchase_charges_the_card_and_makes_the_paid_invoice_and_the_grant() {
    let f = Fixture::new().await;
    let customer = f.customer("buyer@example.com").await;
    f.card(&customer, "4242").await;
    let top_up = top_up(&f).await;
    let outcome = f
        .app
        .purchase_top_up(&f.metadata, &customer, Some(top_up.as_str()), Some(3))
        .await
        .unwrap();
    let PurchaseOutcome::Paid { purchase, .. } = outcome else {
        panic!("paid at once by the sandbox: {outcome:?}")
    };
    assert_eq!(purchase.credits, 3000);
    assert_bought_once(&f, &customer, 3, "a purchase").await;
    let grant = &grants(&f, &customer).await[0];
    let expires = grant.expires_at.expect("an expiry");
    assert_eq!((expires - grant.starts_at).num_days(), 30);
}

#[tokio::test]
async fn a_declined_card_leaves_a_failed_payment_and_no_invoice_nor_grant() {
    let f = Fixture::new().await;
    let customer = f.customer("declined@example.com").await;
    f.card(&customer, "0341").await;
    let top_up = top_up(&f).await;
    let refused = f
        .app
        .purchase_top_up(&f.metadata, &customer, Some(top_up.as_str()), Some(1))
        .await;
    match refused {
        Err(AppError::PaymentFailed { message, .. }) => {
            assert_eq!(message, "Your card was declined.")
        }
        other => panic!("expected a decline, got {other:?}"),
    }
    let payments = payments(&f, &customer).await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].status, "failed");
    assert!(invoices(&f, &customer).await.is_empty());
    assert!(grants(&f, &customer).await.is_empty());
}

#[tokio::test]
async fn no_card_a_bad_quantity_or_a_top_up_not_offered_changes_nothing() {
    let f = Fixture::new().await;
    let customer = f.customer("nocard@example.com").await;
    let top_up = top_up(&f).await;
    assert_conflict(
        f.app
            .purchase_top_up(&f.metadata, &customer, Some(top_up.as_str()), Some(1))
            .await,
        "No payment method on file",
    );
    f.card(&customer, "4242").await;
    for quantity in [Some(0), Some(-2), Some(11), None] {
        let refused = f
            .app
            .purchase_top_up(&f.metadata, &customer, Some(top_up.as_str()), quantity)
            .await;
        assert!(
            matches!(&refused, Err(AppError::Invalid { message, .. })
                if message == "quantity must be a whole number from 1 to 10"),
            "{quantity:?}: {refused:?}"
        );
    }
    // A EUR plan: a USD top-up offered on every plan in its currency is not offered on it.
    let plan = f
        .app
        .create_plan(
            &f.metadata,
            app::plans::NewPlan {
                name: Some("Euro".into()),
                currency: Some("EUR".into()),
                pricing_data: Some(
                    serde_json::json!({"components":[{"type":"flat","amountCents":900}]}),
                ),
                ..app::plans::NewPlan::default()
            },
        )
        .await
        .unwrap()
        .id
        .unwrap();
    f.start(&customer, &plan, None).await.unwrap();
    assert!(f
        .app
        .offered_top_ups(f.tenant(), &customer)
        .await
        .unwrap()
        .is_empty());
    assert_not_found(
        f.app
            .purchase_top_up(&f.metadata, &customer, Some(top_up.as_str()), Some(1))
            .await,
        "Top-up not found",
    );
    // The EUR plan's own invoice was charged; no purchase was.
    assert!(payments(&f, &customer)
        .await
        .iter()
        .all(|payment| payment.currency == "EUR"));
    assert!(grants(&f, &customer).await.is_empty());
}

#[tokio::test]
async fn a_top_up_naming_a_plan_in_another_currency_is_refused() {
    let f = Fixture::new().await;
    let plan = f.plan().await;
    let refused = f
        .app
        .create_top_up(
            &f.metadata,
            NewTopUp {
                feature_slug: Some("api_calls".into()),
                name: Some("Calls".into()),
                credits_per_unit: Some(100),
                unit_amount_cents: Some(100),
                currency: Some("EUR".into()),
                plan_ids: Some(vec![plan.to_string()]),
                ..NewTopUp::default()
            },
        )
        .await;
    match refused {
        Err(AppError::Invalid { message, .. }) => assert!(message.contains("USD"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let (listed, _) = f.app.list_top_ups(f.principal(), None, None).await.unwrap();
    assert!(listed.is_empty());
}

/// Killed after each of its steps (charge recorded, settled, invoice drafted, issued, paid),
/// a purchase is finished by the resume: charged once, one paid invoice, one grant.
#[tokio::test]
async fn a_purchase_cut_after_any_step_is_finished_once_on_resume() {
    for after in 1..=5 {
        let f = Fixture::new().await;
        let customer = f.customer(&format!("cut{after}@example.com")).await;
        f.card(&customer, "4242").await;
        let top_up = top_up(&f).await;
        let dying = App::new(f.pool.clone()).with_death(DeathPlan {
            kind: "credits.purchase".into(),
            after_commits: after,
            abort: false,
        });
        let died = tokio::spawn({
            let (dying, metadata, customer) = (dying.clone(), f.metadata.clone(), customer.clone());
            async move {
                dying
                    .purchase_top_up(&metadata, &customer, Some(top_up.as_str()), Some(2))
                    .await
            }
        })
        .await;
        assert!(died.is_err_and(|e| e.is_panic()), "cut after step {after}");
        dying.instance.stop_living().await;
        assert_eq!(
            f.app.resume_abandoned_flows().await.unwrap(),
            1,
            "cut after step {after}"
        );
        assert_bought_once(&f, &customer, 2, &format!("cut after step {after}")).await;
    }
}
