use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use serde_json::json;

use crate::clock::FixedClock;
use crate::currency::Currency;
use crate::id::{PlanId, PriceId};
use crate::plan::{Plan, PlanCommand, PlanError, PlanEvent, PlanServices};
use crate::subscription::PlanSnapshot;
use crate::tenant::{Mode, Tenant};

type PlanTester = TestFramework<Plan>;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn services() -> PlanServices {
    PlanServices {
        clock: Arc::new(FixedClock(now())),
    }
}

fn tenant() -> Tenant {
    Tenant::new("merchant_1", Mode::Test)
}

fn id() -> PlanId {
    PlanId::parse("plan_1").unwrap()
}

fn price_id() -> PriceId {
    PriceId::parse("price_1").unwrap()
}

fn pricing() -> serde_json::Value {
    json!({"components": [{"type": "flat", "amountCents": 5000, "interval": "month"}]})
}

/// The raw fields of a valid CreatePlan; each test spoils the one it is about.
struct Raw {
    name: Option<&'static str>,
    description: Option<&'static str>,
    currency: Option<&'static str>,
    pricing_data: Option<serde_json::Value>,
    credit_allowance: Option<i64>,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            name: Some(" Pro "),
            description: Some("Pro plan"),
            currency: Some("usd"),
            pricing_data: Some(pricing()),
            credit_allowance: Some(1000),
        }
    }
}

fn create(raw: Raw) -> PlanCommand {
    PlanCommand::CreatePlan {
        id: id(),
        price_id: price_id(),
        tenant: tenant(),
        name: raw.name.map(str::to_owned),
        description: raw.description.map(str::to_owned),
        currency: raw.currency.map(str::to_owned),
        pricing_data: raw.pricing_data,
        credit_allowance: raw.credit_allowance,
    }
}

fn created() -> PlanEvent {
    PlanEvent::PlanCreated {
        id: id(),
        price_id: price_id(),
        tenant: tenant(),
        name: "Pro".into(),
        description: Some("Pro plan".into()),
        currency: Currency::parse("USD").unwrap(),
        pricing_data: pricing(),
        credit_allowance: Some(1000),
        at: now(),
    }
}

#[test]
fn create_plan_records_the_trimmed_name_and_uppercase_currency() {
    PlanTester::with(services())
        .given_no_previous_events()
        .when(create(Raw::default()))
        .then_expect_events(vec![created()]);
}

#[test]
fn create_plan_needs_no_description_nor_credit_allowance() {
    PlanTester::with(services())
        .given_no_previous_events()
        .when(create(Raw {
            description: Some("  "),
            credit_allowance: None,
            ..Raw::default()
        }))
        .then_expect_events(vec![PlanEvent::PlanCreated {
            id: id(),
            price_id: price_id(),
            tenant: tenant(),
            name: "Pro".into(),
            description: None,
            currency: Currency::parse("USD").unwrap(),
            pricing_data: pricing(),
            credit_allowance: None,
            at: now(),
        }]);
}

#[test]
fn create_plan_is_refused_without_a_name() {
    for name in [None, Some("   ")] {
        PlanTester::with(services())
            .given_no_previous_events()
            .when(create(Raw {
                name,
                ..Raw::default()
            }))
            .then_expect_error(PlanError::NameRequired);
    }
}

#[test]
fn create_plan_is_refused_with_a_currency_that_is_not_three_letters() {
    for currency in [None, Some("dollars"), Some("U5D")] {
        PlanTester::with(services())
            .given_no_previous_events()
            .when(create(Raw {
                currency,
                ..Raw::default()
            }))
            .then_expect_error(PlanError::InvalidCurrency);
    }
}

#[test]
fn create_plan_is_refused_when_pricing_data_has_no_components_array() {
    for pricing_data in [
        None,
        Some(json!([])),
        Some(json!({})),
        Some(json!({"components": {"flat": 5000}})),
    ] {
        PlanTester::with(services())
            .given_no_previous_events()
            .when(create(Raw {
                pricing_data,
                ..Raw::default()
            }))
            .then_expect_error(PlanError::InvalidPricingData);
    }
}

#[test]
fn create_plan_accepts_an_empty_components_array() {
    let events = PlanTester::with(services())
        .given_no_previous_events()
        .when(create(Raw {
            pricing_data: Some(json!({"components": []})),
            ..Raw::default()
        }))
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 1);
}

#[test]
fn create_plan_is_refused_with_a_negative_credit_allowance() {
    PlanTester::with(services())
        .given_no_previous_events()
        .when(create(Raw {
            credit_allowance: Some(-1),
            ..Raw::default()
        }))
        .then_expect_error(PlanError::InvalidCreditAllowance);
}

#[test]
fn create_plan_is_refused_when_the_id_already_exists() {
    PlanTester::with(services())
        .given(vec![created()])
        .when(create(Raw::default()))
        .then_expect_error(PlanError::AlreadyExists);
}

#[test]
fn a_plan_snapshot_is_only_for_its_own_tenant() {
    let mut plan = Plan::default();
    assert_eq!(plan.snapshot_for(&tenant()), None);
    plan.apply(created());
    assert_eq!(
        plan.snapshot_for(&tenant()),
        Some(PlanSnapshot {
            plan_id: id(),
            price_id: price_id(),
            name: "Pro".into(),
            description: Some("Pro plan".into()),
            currency: Currency::parse("USD").unwrap(),
            pricing_data: pricing(),
        })
    );
    assert_eq!(
        plan.snapshot_for(&Tenant::new("merchant_1", Mode::Live)),
        None
    );
}

#[test]
fn stored_plan_created_is_camel_case_and_reads_back_equal() {
    let event = created();
    let stored = serde_json::to_value(&event).unwrap();
    assert_eq!(
        stored,
        json!({"PlanCreated": {
            "id": "plan_1",
            "priceId": "price_1",
            "tenant": {"merchantId": "merchant_1", "mode": "test"},
            "name": "Pro",
            "description": "Pro plan",
            "currency": "USD",
            "pricingData": pricing(),
            "creditAllowance": 1000,
            "at": "2026-01-02T03:04:05Z",
        }})
    );
    assert_eq!(serde_json::from_value::<PlanEvent>(stored).unwrap(), event);
}
