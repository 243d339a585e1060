use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use serde_json::json;

use crate::clock::FixedClock;
use crate::credit::FeatureSlug;
use crate::currency::Currency;
use crate::id::{PlanId, PriceId};
use crate::plan::{
    AllowanceInput, CreditAllowance, Interval, Plan, PlanCommand, PlanError, PlanEvent,
    PlanServices, PricingComponent,
};
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
    interval: Option<&'static str>,
    trial_days: Option<i64>,
    credits: Vec<AllowanceInput>,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            name: Some(" Pro "),
            description: Some("Pro plan"),
            currency: Some("usd"),
            pricing_data: Some(pricing()),
            credit_allowance: Some(1000),
            interval: None,
            trial_days: None,
            credits: Vec::new(),
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
        interval: raw.interval.map(str::to_owned),
        trial_days: raw.trial_days,
        credits: raw.credits,
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
        interval: Interval::Month,
        trial_days: 0,
        credits: Vec::new(),
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
            interval: Interval::Month,
            trial_days: 0,
            credits: Vec::new(),
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
            interval: Interval::Month,
            trial_days: 0,
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
            "interval": "month",
            "trialDays": 0,
            "at": "2026-01-02T03:04:05Z",
        }})
    );
    assert_eq!(serde_json::from_value::<PlanEvent>(stored).unwrap(), event);
}

#[test]
fn a_plan_created_before_billing_reads_back_monthly_without_a_trial() {
    let stored = json!({"PlanCreated": {
        "id": "plan_1",
        "priceId": "price_1",
        "tenant": {"merchantId": "merchant_1", "mode": "test"},
        "name": "Pro",
        "description": "Pro plan",
        "currency": "USD",
        "pricingData": pricing(),
        "creditAllowance": 1000,
        "at": "2026-01-02T03:04:05Z",
    }});
    assert_eq!(
        serde_json::from_value::<PlanEvent>(stored).unwrap(),
        created()
    );
}

#[test]
fn create_plan_records_a_yearly_interval_and_its_trial() {
    let mut expected = created();
    let PlanEvent::PlanCreated {
        interval,
        trial_days,
        ..
    } = &mut expected;
    *interval = Interval::Year;
    *trial_days = 14;
    PlanTester::with(services())
        .given_no_previous_events()
        .when(create(Raw {
            interval: Some("year"),
            trial_days: Some(14),
            ..Raw::default()
        }))
        .then_expect_events(vec![expected]);
}

#[test]
fn create_plan_is_refused_with_an_unknown_interval() {
    PlanTester::with(services())
        .given_no_previous_events()
        .when(create(Raw {
            interval: Some("week"),
            ..Raw::default()
        }))
        .then_expect_error(PlanError::InvalidInterval);
}

#[test]
fn create_plan_is_refused_with_a_negative_or_overlong_trial() {
    for days in [-1, 731] {
        PlanTester::with(services())
            .given_no_previous_events()
            .when(create(Raw {
                trial_days: Some(days),
                ..Raw::default()
            }))
            .then_expect_error(PlanError::InvalidTrialDays);
    }
}

#[test]
fn create_plan_accepts_flat_per_seat_and_usage_components() {
    let data = json!({"components": [
        {"type": "flat", "name": "Pro", "amountCents": 2900},
        {"type": "per_seat", "name": "Seats", "unitAmountCents": 1000},
        {"type": "usage", "name": "API calls", "featureSlug": "api_calls", "unitAmountCents": 2},
    ]});
    let components = crate::plan::pricing::parse_components(&data).unwrap();
    assert_eq!(
        components,
        vec![
            PricingComponent::Flat {
                name: "Pro".into(),
                amount_cents: 2900
            },
            PricingComponent::PerSeat {
                name: "Seats".into(),
                unit_amount_cents: 1000
            },
            PricingComponent::Usage {
                name: "API calls".into(),
                feature_slug: "api_calls".into(),
                unit_amount_cents: 2
            },
        ]
    );
    let mut expected = created();
    let PlanEvent::PlanCreated { pricing_data, .. } = &mut expected;
    *pricing_data = data.clone();
    PlanTester::with(services())
        .given_no_previous_events()
        .when(create(Raw {
            pricing_data: Some(data),
            ..Raw::default()
        }))
        .then_expect_events(vec![expected]);
}

#[test]
fn create_plan_is_refused_with_a_component_that_is_not_a_valid_one() {
    let bad = [
        (
            json!({"type": "tiered"}),
            "components[0]: type must be flat, per_seat or usage",
        ),
        (
            json!({"amountCents": 100}),
            "components[0]: type must be flat, per_seat or usage",
        ),
        (
            json!({"type": "flat"}),
            "components[0]: amountCents is required (integer cents)",
        ),
        (
            json!({"type": "flat", "amountCents": -1}),
            "components[0]: amountCents must be a whole number of cents from 0 to 1000000000",
        ),
        (
            json!({"type": "flat", "amountCents": 10.5}),
            "components[0]: amountCents must be a whole number of cents from 0 to 1000000000",
        ),
        (
            json!({"type": "per_seat", "unitAmountCents": "10"}),
            "components[0]: unitAmountCents is required (integer cents)",
        ),
        (
            json!({"type": "usage", "featureSlug": "API Calls", "unitAmountCents": 2}),
            "components[0]: featureSlug must be 1 to 64 lowercase letters, digits, _ or -",
        ),
        (
            json!({"type": "flat", "name": "", "amountCents": 1}),
            "components[0]: name must be 1 to 200 characters",
        ),
        (json!("flat"), "components[0]: must be an object"),
    ];
    for (component, message) in bad {
        PlanTester::with(services())
            .given_no_previous_events()
            .when(create(Raw {
                pricing_data: Some(json!({"components": [component]})),
                ..Raw::default()
            }))
            .then_expect_error(PlanError::InvalidComponent(message.to_owned()));
    }
}

#[test]
fn invoicing_reads_the_components_it_knows_of_an_older_plan_and_skips_the_rest() {
    let stored = json!({"components": [
        {"type": "base", "price": 29},
        {"type": "flat", "amountCents": 5000, "interval": "month"},
    ]});
    assert_eq!(
        crate::plan::pricing::invoiced_components(&stored),
        vec![PricingComponent::Flat {
            name: "Subscription".into(),
            amount_cents: 5000
        }]
    );
}

// --- Credit allowances -----------------------------------------------------------------------

fn allowance(slug: &str, amount: i64) -> AllowanceInput {
    AllowanceInput {
        feature_slug: Some(slug.into()),
        name: None,
        amount: Some(amount),
        rollover: None,
    }
}

fn create_with_credits(credits: Vec<AllowanceInput>) -> PlanCommand {
    create(Raw {
        credits,
        ..Raw::default()
    })
}

#[test]
fn a_plan_grants_credits_per_feature_named_by_their_slug_unless_named() {
    let mut credits = vec![
        allowance("api_calls", 1000),
        AllowanceInput {
            name: Some(" Exports ".into()),
            rollover: Some(true),
            ..allowance("exports", 5)
        },
    ];
    let mut expected = created();
    let PlanEvent::PlanCreated {
        credits: granted, ..
    } = &mut expected;
    *granted = vec![
        CreditAllowance {
            feature_slug: FeatureSlug::parse("api_calls").unwrap(),
            name: "api_calls".into(),
            amount: 1000,
            rollover: false,
        },
        CreditAllowance {
            feature_slug: FeatureSlug::parse("exports").unwrap(),
            name: "Exports".into(),
            amount: 5,
            rollover: true,
        },
    ];
    PlanTester::with(services())
        .given_no_previous_events()
        .when(create_with_credits(std::mem::take(&mut credits)))
        .then_expect_events(vec![expected]);
}

#[test]
fn bad_credit_allowances_are_refused() {
    for (credits, message) in [
        (vec![allowance("api_calls", 0)], "credits[0]: amount must be from 1 to 1000000000000"),
        (vec![allowance("API", 5)], "credits[0]: featureSlug must be 1 to 64 lowercase letters, digits, _ or -, starting with a letter"),
        (
            vec![allowance("api_calls", 5), allowance("api_calls", 6)],
            "credits[1]: a feature is granted once",
        ),
        (
            vec![AllowanceInput {
                feature_slug: None,
                ..allowance("x", 1)
            }],
            "credits[0]: featureSlug is required",
        ),
    ] {
        PlanTester::with(services())
            .given_no_previous_events()
            .when(create_with_credits(credits))
            .then_expect_error_message(message);
    }
}

#[test]
fn a_plan_stored_before_credits_reads_back_with_none() {
    let mut stored = serde_json::to_value(created()).unwrap();
    stored["PlanCreated"]
        .as_object_mut()
        .unwrap()
        .remove("credits");
    let event: PlanEvent = serde_json::from_value(stored).unwrap();
    assert_eq!(event, created());
}
