//! The billing read models (plans, subscriptions, payment methods, organizations) are rebuilt
//! from the log in place and come back equal to the live ones, row for row.

use billstream_tests::billing::Billing;
use billstream_tests::TestApp;
use domain::id::{CustomerId, OrganizationId, PaymentMethodId, SubscriptionId};
use domain::organization::OrganizationCommand;
use domain::payment_method::PaymentMethodCommand;
use domain::subscription::SubscriptionCommand;
use serde_json::json;
use sqlx::PgPool;

struct Quiet;

impl projections::rebuild::Progress for Quiet {
    fn started(&self, _: u64) {}
    fn advanced(&self, _: u64) {}
}

/// Every row of `table`, as JSON text, in a stable order.
async fn rows(pool: &PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(&format!(
        "SELECT to_jsonb(t)::text FROM {table} t ORDER BY to_jsonb(t)::text"
    ))
    .fetch_all(pool)
    .await
    .expect("read table")
}

#[tokio::test]
async fn rebuilt_billing_read_models_equal_the_live_ones() {
    let app = TestApp::spawn().await;
    let billing = Billing::new(&app);
    let mut customers = Vec::new();
    for n in 0..6 {
        let customer = app
            .create_customer(json!({"email": format!("c{n}@example.com")}))
            .await;
        customers.push(customer["id"].as_str().unwrap().to_owned());
    }
    for (n, customer) in customers.iter().enumerate() {
        let card = billing.card(customer, &format!("{:04}", 1000 + n)).await;
        let spare = billing.card(customer, &format!("{:04}", 2000 + n)).await;
        let (subscription, _) = billing.subscription(customer, &card).await;
        let subscription = SubscriptionId::parse(&subscription).unwrap();
        match n % 3 {
            // Canceled, and its card unlinked and removed.
            0 => {
                billing
                    .state
                    .subscriptions
                    .execute(
                        subscription.as_str(),
                        SubscriptionCommand::CancelSubscription {
                            tenant: billing.tenant.clone(),
                            at_period_end: false,
                        },
                        &billing.metadata,
                    )
                    .await
                    .unwrap();
                for command in [
                    PaymentMethodCommand::UnlinkPaymentMethod {
                        tenant: billing.tenant.clone(),
                        subscription_id: subscription.clone(),
                    },
                    PaymentMethodCommand::RemovePaymentMethod {
                        tenant: billing.tenant.clone(),
                    },
                ] {
                    billing
                        .state
                        .payment_methods
                        .execute(&card, command, &billing.metadata)
                        .await
                        .unwrap();
                }
            }
            // Moved to the spare card.
            1 => {
                billing
                    .state
                    .subscriptions
                    .execute(
                        subscription.as_str(),
                        SubscriptionCommand::ChangeSubscriptionPaymentMethod {
                            tenant: billing.tenant.clone(),
                            payment_method_id: PaymentMethodId::parse(&spare).unwrap(),
                        },
                        &billing.metadata,
                    )
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    let organization = OrganizationId::generate();
    billing
        .state
        .organizations
        .execute_new(
            organization.as_str(),
            OrganizationCommand::CreateOrganization {
                id: organization.clone(),
                tenant: billing.tenant.clone(),
                name: Some("Acme".into()),
                primary_customer_id: CustomerId::parse(&customers[0]).unwrap(),
            },
            &billing.metadata,
        )
        .await
        .unwrap();
    billing
        .state
        .organizations
        .execute(
            organization.as_str(),
            OrganizationCommand::AddOrganizationMember {
                tenant: billing.tenant.clone(),
                customer_id: CustomerId::parse(&customers[1]).unwrap(),
            },
            &billing.metadata,
        )
        .await
        .unwrap();

    let models = [
        ("plan_list", vec!["plan_list"]),
        ("subscription_list", vec!["subscription_list"]),
        ("payment_method_list", vec!["payment_method_list"]),
        (
            "organization_list",
            vec!["organization_list", "organization_members"],
        ),
        ("invoice_list", vec!["invoice_list"]),
        ("document_numbers", vec!["document_numbers"]),
        ("payment_list", vec!["payment_list"]),
        ("payment_totals", vec!["payment_totals"]),
    ];
    for (name, tables) in models {
        let mut live = Vec::new();
        for table in &tables {
            let table_rows = rows(&app.pool, table).await;
            assert!(!table_rows.is_empty(), "{table} is empty");
            live.push(table_rows);
        }
        let report = projections::rebuild::rebuild(&app.pool, name, &Quiet)
            .await
            .unwrap_or_else(|e| panic!("rebuild {name}: {e}"));
        assert!(report.events > 0, "{name}: {report:?}");
        for (table, before) in tables.iter().zip(live) {
            assert_eq!(rows(&app.pool, table).await, before, "{table}");
        }
    }
}
