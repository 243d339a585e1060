//! `billstream demo`: the demo customer's portal has something on every tab, reached with the
//! session the demo prints.

use projections::read_models::payment_method_list::PaymentMethodListProjection;
use projections::read_models::subscription_list::SubscriptionListProjection;

use crate::support::Fixture;

#[tokio::test]
async fn the_demo_fills_every_tab_of_its_customers_portal() {
    let f = Fixture::new().await;
    let demo = f.app.seed_demo().await.expect("seed the demo");
    let session = f
        .app
        .authenticate_key_or_session(&demo.session_token)
        .await
        .expect("the printed session opens the portal");
    let customer = f.app.portal_customer(&session, None).await.unwrap();
    assert_eq!(customer.id, demo.customer_id);
    // The overview's own read model is fed by the service's log consumers, which this test
    // does not run: its parts are read from theirs.
    let cards = PaymentMethodListProjection::for_customer(&f.pool, &session.tenant, &customer.id)
        .await
        .unwrap();
    assert_eq!(cards.len(), 2, "two cards");
    let subscription =
        SubscriptionListProjection::live_for_customer(&f.pool, &session.tenant, &customer.id)
            .await
            .unwrap()
            .expect("a subscription");
    assert_eq!(subscription.status, "active");

    let (invoices, _) = f
        .app
        .portal_invoices(&session, None, None, 100)
        .await
        .unwrap();
    let statuses: Vec<&str> = invoices
        .iter()
        .map(|invoice| invoice["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "paid").count(),
        2,
        "the first period and the renewal: {statuses:?}"
    );
    assert!(statuses.contains(&"issued"), "{statuses:?}");
    let (payments, _) = f
        .app
        .portal_payments(&session, None, None, 100)
        .await
        .unwrap();
    let failed: Vec<_> = payments
        .iter()
        .filter(|payment| payment["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{payments:?}");
    assert_eq!(failed[0]["errorMessage"], "Your card was declined.");

    let summary = f
        .app
        .credit_summary(&session, demo.customer_id.as_str(), 20)
        .await
        .unwrap();
    let calls = &summary.balances[0];
    assert_eq!(calls.feature_slug, "api_calls");
    assert_eq!(calls.name, "API calls", "named by the plan's allowance");
    assert_eq!(calls.used, 425);
    assert_eq!(
        calls.total, 1500,
        "the renewed period's 1,000 and the promotion's 500"
    );
    let offered = f
        .app
        .offered_top_ups(&session.tenant, &demo.customer_id)
        .await
        .unwrap();
    assert_eq!(offered.len(), 1);
}
