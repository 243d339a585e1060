use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use serde_json::json;

use crate::clock::FixedClock;
use crate::credit::{
    CreditCommand, CreditDraw, CreditError, CreditEvent, CreditLedger, CreditServices, FeatureSlug,
    GrantSource, GrantStatus, NewGrant,
};
use crate::id::{CreditGrantId, CustomerId, UsageId};
use crate::tenant::{Mode, Tenant};

type LedgerTester = TestFramework<CreditLedger>;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn services_at(at: DateTime<Utc>) -> CreditServices {
    CreditServices {
        clock: Arc::new(FixedClock(at)),
    }
}

fn services() -> CreditServices {
    services_at(now())
}

fn tenant() -> Tenant {
    Tenant::new("merchant_1", Mode::Test)
}

fn customer() -> CustomerId {
    CustomerId::parse("cust_1").unwrap()
}

fn feature() -> FeatureSlug {
    FeatureSlug::parse("api_calls").unwrap()
}

fn cg(n: u32) -> CreditGrantId {
    CreditGrantId::parse(&format!("cg_{n}")).unwrap()
}

fn usg(n: u32) -> UsageId {
    UsageId::parse(&format!("usg_{n}")).unwrap()
}

/// Grant `n` of `amount`, at `priority`, expiring `expires_in` after now.
fn granted(n: u32, amount: i64, priority: i32, expires_in: Option<Duration>) -> CreditEvent {
    CreditEvent::CreditsGranted {
        tenant: tenant(),
        customer_id: customer(),
        feature_slug: feature(),
        grant_id: cg(n),
        amount,
        source: GrantSource::Manual,
        priority,
        starts_at: now() - Duration::days(1),
        expires_at: expires_in.map(|d| now() + d),
        reference_code: None,
        notes: None,
        feature_name: None,
        at: now() - Duration::days(1),
    }
}

fn new_grant(n: u32, amount: i64) -> NewGrant {
    NewGrant {
        id: cg(n),
        amount,
        source: GrantSource::Promotion,
        priority: None,
        starts_at: None,
        expires_at: None,
        reference_code: None,
        notes: None,
        feature_name: None,
    }
}

fn grant(new: NewGrant) -> CreditCommand {
    CreditCommand::Grant {
        tenant: tenant(),
        customer_id: customer(),
        feature_slug: feature(),
        grant: new,
    }
}

fn usage(n: u32, key: &str, quantity: i64, overage_billed: bool) -> CreditCommand {
    CreditCommand::RecordUsage {
        tenant: tenant(),
        customer_id: customer(),
        feature_slug: feature(),
        usage_id: usg(n),
        idempotency_key: key.into(),
        quantity,
        occurred_at: None,
        overage_billed,
    }
}

fn recorded(n: u32, key: &str, quantity: i64, consumed: i64, remaining: i64) -> CreditEvent {
    CreditEvent::UsageRecorded {
        tenant: tenant(),
        customer_id: customer(),
        feature_slug: feature(),
        usage_id: usg(n),
        idempotency_key: key.into(),
        quantity,
        credits_consumed: consumed,
        overage_units: quantity - consumed,
        remaining_after: remaining,
        occurred_at: now(),
        at: now(),
    }
}

fn consumed(n: u32, draws: &[(u32, i64)]) -> CreditEvent {
    CreditEvent::CreditsConsumed {
        usage_id: usg(n),
        draws: draws
            .iter()
            .map(|(grant, amount)| CreditDraw {
                grant_id: cg(*grant),
                amount: *amount,
            })
            .collect(),
        at: now(),
    }
}

fn ledger(events: Vec<CreditEvent>) -> CreditLedger {
    let mut ledger = CreditLedger::default();
    for event in events {
        ledger.apply(event);
    }
    ledger
}

// --- Grants ----------------------------------------------------------------------------------

#[test]
fn a_first_grant_opens_the_ledger_active_from_now_at_the_default_priority() {
    LedgerTester::with(services())
        .given_no_previous_events()
        .when(grant(new_grant(1, 1000)))
        .then_expect_events(vec![CreditEvent::CreditsGranted {
            tenant: tenant(),
            customer_id: customer(),
            feature_slug: feature(),
            grant_id: cg(1),
            amount: 1000,
            source: GrantSource::Promotion,
            priority: 50,
            starts_at: now(),
            expires_at: None,
            reference_code: None,
            notes: None,
            feature_name: None,
            at: now(),
        }]);
}

#[test]
fn bad_grants_are_refused() {
    let cases = [
        (new_grant(1, 0), CreditError::InvalidAmount),
        (new_grant(1, -5), CreditError::InvalidAmount),
        (new_grant(1, 1_000_000_000_001), CreditError::InvalidAmount),
        (
            NewGrant {
                priority: Some(101),
                ..new_grant(1, 10)
            },
            CreditError::InvalidPriority,
        ),
        (
            NewGrant {
                expires_at: Some(now() - Duration::seconds(1)),
                ..new_grant(1, 10)
            },
            CreditError::ExpiresBeforeStart,
        ),
        (
            NewGrant {
                starts_at: Some(now() + Duration::days(2)),
                expires_at: Some(now() + Duration::days(1)),
                ..new_grant(1, 10)
            },
            CreditError::ExpiresBeforeStart,
        ),
        (
            NewGrant {
                notes: Some("x".repeat(501)),
                ..new_grant(1, 10)
            },
            CreditError::TextTooLong,
        ),
    ];
    for (bad, error) in cases {
        LedgerTester::with(services())
            .given_no_previous_events()
            .when(grant(bad))
            .then_expect_error(error);
    }
    LedgerTester::with(services())
        .given(vec![granted(1, 10, 50, None)])
        .when(grant(new_grant(1, 10)))
        .then_expect_error(CreditError::GrantExists);
}

#[test]
fn another_tenants_or_customers_ledger_is_not_found() {
    LedgerTester::with(services())
        .given(vec![granted(1, 10, 50, None)])
        .when(CreditCommand::Grant {
            tenant: Tenant::new("merchant_2", Mode::Test),
            customer_id: customer(),
            feature_slug: feature(),
            grant: new_grant(2, 10),
        })
        .then_expect_error(CreditError::NotFound);
    LedgerTester::with(services())
        .given(vec![granted(1, 10, 50, None)])
        .when(CreditCommand::Revoke {
            tenant: Tenant::new("merchant_1", Mode::Live),
            grant_id: cg(1),
        })
        .then_expect_error(CreditError::NotFound);
}

#[test]
fn feature_slugs_are_lowercase_words() {
    for good in ["api_calls", "seats", "gpu-minutes", "v2_tokens"] {
        assert!(FeatureSlug::parse(good).is_ok(), "{good}");
    }
    for bad in ["", "API_CALLS", "2fa", "api calls", "ä", &"a".repeat(65)] {
        assert_eq!(
            FeatureSlug::parse(bad),
            Err(CreditError::InvalidFeatureSlug),
            "{bad}"
        );
    }
}

// --- Usage -----------------------------------------------------------------------------------

#[test]
fn usage_draws_lowest_priority_first_then_soonest_expiry_then_oldest() {
    LedgerTester::with(services())
        .given(vec![
            granted(1, 10, 50, None),
            granted(2, 10, 50, Some(Duration::days(3))),
            granted(3, 10, 10, None),
            granted(4, 10, 50, Some(Duration::days(1))),
            granted(5, 10, 50, None),
        ])
        .when(usage(1, "k1", 45, false))
        .then_expect_events(vec![
            recorded(1, "k1", 45, 45, 5),
            consumed(1, &[(3, 10), (4, 10), (2, 10), (1, 10), (5, 5)]),
        ]);
}

#[test]
fn usage_beyond_the_credits_is_refused_whole_unless_the_plan_bills_it() {
    LedgerTester::with(services())
        .given(vec![granted(1, 10, 50, None)])
        .when(usage(1, "k1", 11, false))
        .then_expect_error(CreditError::InsufficientCredits);
    LedgerTester::with(services())
        .given(vec![granted(1, 10, 50, None)])
        .when(usage(1, "k1", 11, true))
        .then_expect_events(vec![recorded(1, "k1", 11, 10, 0), consumed(1, &[(1, 10)])]);
    // No credits at all, usage billed: all of it is overage, and it opens the ledger.
    LedgerTester::with(services())
        .given_no_previous_events()
        .when(usage(1, "k1", 7, true))
        .then_expect_events(vec![recorded(1, "k1", 7, 0, 0)]);
    LedgerTester::with(services())
        .given_no_previous_events()
        .when(usage(1, "k1", 7, false))
        .then_expect_error(CreditError::InsufficientCredits);
}

#[test]
fn a_usage_answers_from_the_ledger_its_outcome() {
    let ledger = ledger(vec![
        granted(1, 10, 50, None),
        recorded(1, "k1", 4, 4, 6),
        consumed(1, &[(1, 4)]),
    ]);
    let outcome = ledger.usage(&usg(1)).unwrap();
    assert_eq!(
        (
            outcome.credits_consumed,
            outcome.overage_units,
            outcome.remaining_after
        ),
        (4, 0, 6)
    );
    // Only the last is kept: the state does not grow with every usage.
    let ledger = {
        let mut next = ledger;
        next.apply(recorded(2, "k2", 1, 1, 5));
        next
    };
    assert!(ledger.usage(&usg(1)).is_none());
    assert!(ledger.usage(&usg(2)).is_some());
}

#[test]
fn bad_usage_is_refused() {
    for quantity in [0, -1, 1_000_000_000_001] {
        LedgerTester::with(services())
            .given(vec![granted(1, 10, 50, None)])
            .when(usage(1, "k1", quantity, true))
            .then_expect_error(CreditError::InvalidQuantity);
    }
    for key in ["", "   ", &"k".repeat(256)] {
        LedgerTester::with(services())
            .given(vec![granted(1, 10, 50, None)])
            .when(usage(1, key, 1, true))
            .then_expect_error(CreditError::InvalidIdempotencyKey);
    }
}

#[test]
fn an_expired_grant_counts_for_nothing_before_its_expiry_is_recorded() {
    let given = vec![
        granted(1, 10, 10, Some(Duration::hours(1))),
        granted(2, 5, 50, None),
    ];
    let later = now() + Duration::hours(2);
    LedgerTester::with(services_at(later))
        .given(given.clone())
        .when(usage(1, "k1", 6, false))
        .then_expect_error(CreditError::InsufficientCredits);
    let balance = ledger(given).balance_at(later);
    assert_eq!((balance.remaining, balance.total), (5, 5));
}

#[test]
fn a_grant_counts_from_when_it_starts() {
    let mut future = granted(1, 10, 50, None);
    if let CreditEvent::CreditsGranted { starts_at, .. } = &mut future {
        *starts_at = now() + Duration::days(1);
    }
    LedgerTester::with(services())
        .given(vec![future.clone()])
        .when(usage(1, "k1", 1, false))
        .then_expect_error(CreditError::InsufficientCredits);
    assert_eq!(
        ledger(vec![future])
            .balance_at(now() + Duration::days(2))
            .remaining,
        10
    );
}

// --- Expiry and revocation -------------------------------------------------------------------

#[test]
fn expiries_are_recorded_at_their_own_time_with_what_they_forfeit() {
    LedgerTester::with(services_at(now() + Duration::days(2)))
        .given(vec![
            granted(1, 10, 50, Some(Duration::days(1))),
            granted(2, 10, 50, Some(Duration::days(5))),
            granted(3, 10, 50, None),
            recorded(1, "k1", 4, 4, 26),
            consumed(1, &[(1, 4)]),
        ])
        .when(CreditCommand::RecordExpiries { tenant: tenant() })
        .then_expect_events(vec![CreditEvent::CreditGrantExpired {
            grant_id: cg(1),
            forfeited: 6,
            at: now() + Duration::days(1),
        }]);
    LedgerTester::with(services_at(now() + Duration::days(2)))
        .given(vec![
            granted(1, 10, 50, Some(Duration::days(1))),
            CreditEvent::CreditGrantExpired {
                grant_id: cg(1),
                forfeited: 10,
                at: now() + Duration::days(1),
            },
        ])
        .when(CreditCommand::RecordExpiries { tenant: tenant() })
        .then_expect_events(vec![]);
}

#[test]
fn a_revoked_grant_forfeits_what_is_left_and_is_revoked_once() {
    let given = vec![
        granted(1, 10, 50, None),
        recorded(1, "k1", 3, 3, 7),
        consumed(1, &[(1, 3)]),
    ];
    LedgerTester::with(services())
        .given(given.clone())
        .when(CreditCommand::Revoke {
            tenant: tenant(),
            grant_id: cg(1),
        })
        .then_expect_events(vec![CreditEvent::CreditGrantRevoked {
            grant_id: cg(1),
            forfeited: 7,
            at: now(),
        }]);
    let mut revoked = given;
    revoked.push(CreditEvent::CreditGrantRevoked {
        grant_id: cg(1),
        forfeited: 7,
        at: now(),
    });
    LedgerTester::with(services())
        .given(revoked.clone())
        .when(CreditCommand::Revoke {
            tenant: tenant(),
            grant_id: cg(1),
        })
        .then_expect_error(CreditError::AlreadyRevoked);
    LedgerTester::with(services())
        .given(revoked.clone())
        .when(usage(2, "k2", 1, false))
        .then_expect_error(CreditError::InsufficientCredits);
    LedgerTester::with(services())
        .given(revoked)
        .when(CreditCommand::Revoke {
            tenant: tenant(),
            grant_id: cg(9),
        })
        .then_expect_error(CreditError::GrantNotFound);
    LedgerTester::with(services_at(now() + Duration::days(2)))
        .given(vec![granted(1, 10, 50, Some(Duration::days(1)))])
        .when(CreditCommand::Revoke {
            tenant: tenant(),
            grant_id: cg(1),
        })
        .then_expect_error(CreditError::GrantExpired);
}

// --- Balance ---------------------------------------------------------------------------------

#[test]
fn the_balance_counts_live_grants_and_names_the_next_expiry() {
    let ledger = ledger(vec![
        granted(1, 100, 50, Some(Duration::days(10))),
        granted(2, 50, 50, Some(Duration::days(3))),
        granted(3, 20, 50, None),
        recorded(1, "k1", 60, 60, 110),
        consumed(1, &[(2, 50), (1, 10)]),
    ]);
    let balance = ledger.balance_at(now());
    assert_eq!(
        (balance.remaining, balance.total, balance.used),
        (110, 170, 60)
    );
    // Grant 2 is used up, so the next expiry with credits left is grant 1's.
    assert_eq!(balance.next_expiry, Some(now() + Duration::days(10)));
    assert_eq!(ledger.grants[1].status_at(now()), GrantStatus::Depleted);
    // Once both expired, only the grant that never expires counts, unused.
    let after = ledger.balance_at(now() + Duration::days(11));
    assert_eq!((after.remaining, after.total, after.used), (20, 20, 0));
    assert_eq!(after.next_expiry, None);
}

#[test]
fn stored_credit_events_are_camel_case() {
    assert_eq!(
        serde_json::to_value(consumed(1, &[(2, 5)])).unwrap(),
        json!({"CreditsConsumed": {
            "usageId": "usg_1",
            "draws": [{"grantId": "cg_2", "amount": 5}],
            "at": "2026-03-01T12:00:00Z",
        }})
    );
    let value = serde_json::to_value(granted(1, 10, 50, None)).unwrap();
    assert_eq!(value["CreditsGranted"]["source"], "manual");
    assert_eq!(value["CreditsGranted"]["featureSlug"], "api_calls");
}
