use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;

use crate::clock::FixedClock;
use crate::credit::FeatureSlug;
use crate::currency::Currency;
use crate::id::{CreditGrantId, InvoiceId, PlanId, TopUpId};
use crate::tenant::{Mode, Tenant};
use crate::top_up::{
    OfferedPlan, PurchaseIds, TopUp, TopUpCommand, TopUpError, TopUpEvent, TopUpServices,
};

type TopUpTester = TestFramework<TopUp>;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn services() -> TopUpServices {
    TopUpServices {
        clock: Arc::new(FixedClock(now())),
    }
}

fn tenant() -> Tenant {
    Tenant::new("merchant_1", Mode::Test)
}

fn id() -> TopUpId {
    TopUpId::parse("tu_1").unwrap()
}

fn usd() -> Currency {
    Currency::parse("usd").unwrap()
}

fn plan(n: u32, currency: &str) -> OfferedPlan {
    OfferedPlan {
        id: PlanId::parse(&format!("plan_{n}")).unwrap(),
        currency: Currency::parse(currency).unwrap(),
    }
}

/// The raw fields of a valid CreateTopUp; each test spoils the one it is about.
struct Raw {
    feature_slug: Option<&'static str>,
    name: Option<&'static str>,
    credits_per_unit: Option<i64>,
    unit_amount_cents: Option<i64>,
    currency: Option<&'static str>,
    plans: Vec<OfferedPlan>,
    expires_after_days: Option<i64>,
    max_quantity: Option<i64>,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            feature_slug: Some("api_calls"),
            name: Some(" 1,000 API calls "),
            credits_per_unit: Some(1000),
            unit_amount_cents: Some(500),
            currency: Some("usd"),
            plans: vec![plan(1, "usd")],
            expires_after_days: Some(30),
            max_quantity: Some(10),
        }
    }
}

fn create(raw: Raw) -> TopUpCommand {
    TopUpCommand::CreateTopUp {
        id: id(),
        tenant: tenant(),
        feature_slug: raw.feature_slug.map(str::to_owned),
        name: raw.name.map(str::to_owned),
        credits_per_unit: raw.credits_per_unit,
        unit_amount_cents: raw.unit_amount_cents,
        currency: raw.currency.map(str::to_owned),
        plans: raw.plans,
        expires_after_days: raw.expires_after_days,
        max_quantity: raw.max_quantity,
    }
}

fn created() -> TopUpEvent {
    created_with(vec![plan(1, "usd").id], Some(30), 10)
}

fn created_with(
    plan_ids: Vec<PlanId>,
    expires_after_days: Option<u32>,
    max_quantity: i64,
) -> TopUpEvent {
    TopUpEvent::TopUpCreated {
        id: id(),
        tenant: tenant(),
        feature_slug: FeatureSlug::parse("api_calls").unwrap(),
        name: "1,000 API calls".to_owned(),
        credits_per_unit: 1000,
        unit_amount_cents: 500,
        currency: usd(),
        plan_ids,
        expires_after_days,
        max_quantity,
        at: now(),
    }
}

fn top_up() -> TopUp {
    let mut top_up = TopUp::default();
    top_up.apply(created());
    top_up
}

fn ids() -> PurchaseIds {
    PurchaseIds {
        invoice_id: InvoiceId::parse("inv_1").unwrap(),
        grant_id: CreditGrantId::parse("cg_1").unwrap(),
    }
}

#[test]
fn a_top_up_is_created_with_its_fields_parsed() {
    TopUpTester::with(services())
        .given_no_previous_events()
        .when(create(Raw::default()))
        .then_expect_events(vec![created()]);
}

#[test]
fn a_top_up_without_plans_gets_the_default_max_quantity_and_no_expiry() {
    TopUpTester::with(services())
        .given_no_previous_events()
        .when(create(Raw {
            plans: Vec::new(),
            expires_after_days: None,
            max_quantity: None,
            ..Raw::default()
        }))
        .then_expect_events(vec![created_with(Vec::new(), None, 100)]);
}

#[test]
fn a_top_up_exists_once() {
    TopUpTester::with(services())
        .given(vec![created()])
        .when(create(Raw::default()))
        .then_expect_error(TopUpError::AlreadyExists);
}

#[test]
fn a_top_up_in_another_currency_than_its_plans_is_refused() {
    TopUpTester::with(services())
        .given_no_previous_events()
        .when(create(Raw {
            plans: vec![plan(1, "usd"), plan(2, "eur")],
            ..Raw::default()
        }))
        .then_expect_error(TopUpError::PlanCurrencyMismatch(
            "plan_2".to_owned(),
            "EUR".to_owned(),
        ));
}

#[test]
fn each_bad_field_is_refused_by_its_own_message() {
    let cases: Vec<(Raw, TopUpError)> = vec![
        (
            Raw {
                feature_slug: None,
                ..Raw::default()
            },
            TopUpError::FeatureRequired,
        ),
        (
            Raw {
                feature_slug: Some("API calls"),
                ..Raw::default()
            },
            TopUpError::InvalidFeatureSlug,
        ),
        (
            Raw {
                name: Some("  "),
                ..Raw::default()
            },
            TopUpError::InvalidName,
        ),
        (
            Raw {
                credits_per_unit: Some(0),
                ..Raw::default()
            },
            TopUpError::InvalidCreditsPerUnit,
        ),
        (
            Raw {
                credits_per_unit: None,
                ..Raw::default()
            },
            TopUpError::InvalidCreditsPerUnit,
        ),
        (
            Raw {
                unit_amount_cents: Some(-5),
                ..Raw::default()
            },
            TopUpError::InvalidUnitAmount,
        ),
        (
            Raw {
                currency: Some("xyz"),
                ..Raw::default()
            },
            TopUpError::InvalidCurrency,
        ),
        (
            Raw {
                expires_after_days: Some(0),
                ..Raw::default()
            },
            TopUpError::InvalidExpiry,
        ),
        (
            Raw {
                max_quantity: Some(10_001),
                ..Raw::default()
            },
            TopUpError::InvalidMaxQuantity,
        ),
    ];
    for (raw, error) in cases {
        TopUpTester::with(services())
            .given_no_previous_events()
            .when(create(raw))
            .then_expect_error(error);
    }
}

#[test]
fn a_purchase_is_priced_and_counted_when_it_is_made() {
    let bought = top_up().purchase(&tenant(), Some(3), now(), ids()).unwrap();
    assert_eq!(bought.quantity, 3);
    assert_eq!(bought.credits, 3000);
    assert_eq!(bought.amount_cents(), 1500);
    assert_eq!(bought.expires_at, Some(now() + Duration::days(30)));
    assert_eq!(bought.invoice_id, ids().invoice_id);
    assert_eq!(bought.grant_id, ids().grant_id);
}

#[test]
fn a_purchase_of_zero_or_more_than_the_max_quantity_is_refused() {
    for quantity in [None, Some(0), Some(-1), Some(11)] {
        assert_eq!(
            top_up().purchase(&tenant(), quantity, now(), ids()),
            Err(TopUpError::InvalidQuantity(10)),
            "{quantity:?}"
        );
    }
    assert!(top_up().purchase(&tenant(), Some(10), now(), ids()).is_ok());
}

#[test]
fn another_tenants_top_up_cannot_be_bought() {
    let other = Tenant::new("merchant_2", Mode::Test);
    assert_eq!(
        top_up().purchase(&other, Some(1), now(), ids()),
        Err(TopUpError::NotFound)
    );
    assert_eq!(
        TopUp::default().purchase(&tenant(), Some(1), now(), ids()),
        Err(TopUpError::NotFound)
    );
}

#[test]
fn a_top_up_naming_plans_is_offered_on_those_only() {
    let named = top_up();
    assert!(named.is_offered_to(Some(&plan(1, "usd"))));
    assert!(!named.is_offered_to(Some(&plan(2, "usd"))));
    assert!(!named.is_offered_to(None));
}

#[test]
fn a_top_up_naming_no_plan_is_offered_on_plans_in_its_currency_and_without_a_plan() {
    let mut open = TopUp::default();
    open.apply(created_with(Vec::new(), Some(30), 10));
    assert!(open.is_offered_to(Some(&plan(7, "usd"))));
    assert!(!open.is_offered_to(Some(&plan(7, "eur"))));
    assert!(open.is_offered_to(None));
}
