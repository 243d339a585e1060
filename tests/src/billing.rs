//! Billing facts written for a test's setup the way the API's handlers write them, through
//! the app's command buses: for tests about reading and changing them, not about how they
//! first arrived.

use billstream::auth::Principal;
use billstream::commands::CommandMetadata;
use billstream::AppState;
use domain::currency::Currency;
use domain::id::{CustomerId, PaymentMethodId, PlanId, PriceId, SubscriptionId};
use domain::payment_method::{Card, PaymentMethodCommand};
use domain::plan::PlanCommand;
use domain::provider::Provider;
use domain::subscription::{PlanSnapshot, SubscriptionCommand};
use domain::tenant::{Mode, Tenant};
use serde_json::json;

use crate::TestApp;

/// The test merchant's test-mode tenant, acting through the app's command buses.
pub struct Billing {
    pub state: AppState,
    pub metadata: CommandMetadata,
    pub tenant: Tenant,
}

impl Billing {
    pub fn new(app: &TestApp) -> Self {
        let tenant = Tenant::new(app.merchant.merchant_id.clone(), Mode::Test);
        Self {
            state: AppState::new(app.pool.clone()),
            metadata: CommandMetadata {
                principal: Principal {
                    tenant: tenant.clone(),
                    key_id: "test_setup".into(),
                    session: None,
                },
                request_id: None,
                idempotency_key: None,
            },
            tenant,
        }
    }

    /// A sandbox visa card of the customer.
    pub async fn card(&self, customer_id: &str, last_four: &str) -> String {
        let id = PaymentMethodId::generate();
        let command = PaymentMethodCommand::AddPaymentMethod {
            id: id.clone(),
            tenant: self.tenant.clone(),
            customer_id: CustomerId::parse(customer_id).unwrap(),
            provider: Provider::Sandbox,
            payment_type: "card".into(),
            card: Some(Card {
                brand: "visa".into(),
                last_four: last_four.into(),
                exp_month: 12,
                exp_year: 2030,
            }),
            provider_reference: None,
        };
        self.state
            .payment_methods
            .execute_new(id.as_str(), command, &self.metadata)
            .await
            .expect("add card");
        id.to_string()
    }

    /// A plan and an active subscription on it, charged to `card`.
    pub async fn subscription(&self, customer_id: &str, card: &str) -> (String, String) {
        let plan_id = PlanId::generate();
        let price_id = PriceId::generate();
        let pricing = json!({"components": [{"type": "flat", "amountCents": 2900}]});
        self.state
            .plans
            .execute_new(
                plan_id.as_str(),
                PlanCommand::CreatePlan {
                    id: plan_id.clone(),
                    price_id: price_id.clone(),
                    tenant: self.tenant.clone(),
                    name: Some("Pro".into()),
                    description: Some("Pro plan".into()),
                    currency: Some("usd".into()),
                    pricing_data: Some(pricing.clone()),
                    credit_allowance: None,
                },
                &self.metadata,
            )
            .await
            .expect("plan");
        let id = SubscriptionId::generate();
        let card = PaymentMethodId::parse(card).unwrap();
        self.state
            .payment_methods
            .execute(
                card.as_str(),
                PaymentMethodCommand::LinkPaymentMethod {
                    tenant: self.tenant.clone(),
                    subscription_id: id.clone(),
                },
                &self.metadata,
            )
            .await
            .expect("link");
        self.state
            .subscriptions
            .execute_new(
                id.as_str(),
                SubscriptionCommand::StartSubscription {
                    id: id.clone(),
                    tenant: self.tenant.clone(),
                    customer_id: CustomerId::parse(customer_id).unwrap(),
                    plan: PlanSnapshot {
                        plan_id: plan_id.clone(),
                        price_id,
                        name: "Pro".into(),
                        description: Some("Pro plan".into()),
                        currency: Currency::parse("USD").unwrap(),
                        pricing_data: pricing,
                    },
                    payment_method_id: Some(card),
                },
                &self.metadata,
            )
            .await
            .expect("start");
        (id.to_string(), plan_id.to_string())
    }
}
