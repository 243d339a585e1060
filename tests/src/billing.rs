//! Billing facts written for a test's setup through the application layer: for tests about
//! reading and changing them, not about how they first arrived.

use app::plans::NewPlan;
use app::subscriptions::NewSubscription;
use app::{App, CommandMetadata, Principal};
use domain::id::{CustomerId, PaymentMethodId};
use domain::payment_method::{Card, PaymentMethodCommand};
use domain::provider::Provider;
use domain::tenant::{Mode, Tenant};
use serde_json::json;

use crate::TestApp;

/// The test merchant's test-mode tenant, acting through the app's command buses.
pub struct Billing {
    pub state: App,
    pub metadata: CommandMetadata,
    pub tenant: Tenant,
}

impl Billing {
    pub fn new(app: &TestApp) -> Self {
        let tenant = Tenant::new(app.merchant.merchant_id.clone(), Mode::Test);
        Self {
            state: App::new(app.pool.clone()),
            metadata: CommandMetadata {
                principal: Principal {
                    tenant: tenant.clone(),
                    key_id: "test_setup".into(),
                    session: None,
                },
                request_id: None,
                flow: None,
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

    /// A plan and an active subscription on it, charged to `card`, started by the app's own
    /// use-case.
    pub async fn subscription(&self, customer_id: &str, card: &str) -> (String, String) {
        let pricing = json!({"components": [{"type": "flat", "amountCents": 2900}]});
        let plan = self
            .state
            .create_plan(
                &self.metadata,
                NewPlan {
                    name: Some("Pro".into()),
                    description: Some("Pro plan".into()),
                    currency: Some("usd".into()),
                    pricing_data: Some(pricing),
                    credit_allowance: None,
                    ..NewPlan::default()
                },
            )
            .await
            .expect("plan");
        let plan_id = plan.id.expect("plan id").to_string();
        let subscription = self
            .state
            .start_subscription(
                &self.metadata,
                NewSubscription {
                    customer_id: Some(customer_id.to_owned()),
                    plan_id: Some(plan_id.clone()),
                    payment_method_id: Some(card.to_owned()),
                    ..NewSubscription::default()
                },
            )
            .await
            .expect("start");
        (
            subscription.id.expect("subscription id").to_string(),
            plan_id,
        )
    }
}
