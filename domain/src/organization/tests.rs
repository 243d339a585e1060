use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use serde_json::json;

use crate::clock::FixedClock;
use crate::id::{CustomerId, OrganizationId};
use crate::organization::{
    OrgRole, Organization, OrganizationCommand, OrganizationError, OrganizationEvent,
    OrganizationServices,
};
use crate::tenant::{Mode, Tenant};

type OrganizationTester = TestFramework<Organization>;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn services() -> OrganizationServices {
    OrganizationServices {
        clock: Arc::new(FixedClock(now())),
    }
}

fn tenant() -> Tenant {
    Tenant::new("merchant_1", Mode::Test)
}

fn id() -> OrganizationId {
    OrganizationId::parse("org_1").unwrap()
}

fn customer(name: &str) -> CustomerId {
    CustomerId::parse(&format!("cust_{name}")).unwrap()
}

fn create(name: Option<&str>) -> OrganizationCommand {
    OrganizationCommand::CreateOrganization {
        id: id(),
        tenant: tenant(),
        name: name.map(str::to_owned),
        primary_customer_id: customer("primary"),
    }
}

fn created() -> OrganizationEvent {
    OrganizationEvent::OrganizationCreated {
        id: id(),
        tenant: tenant(),
        name: "Acme, Inc.".into(),
        primary_customer_id: customer("primary"),
        at: now(),
    }
}

fn member_added(name: &str) -> OrganizationEvent {
    OrganizationEvent::OrganizationMemberAdded {
        customer_id: customer(name),
        at: now(),
    }
}

fn add_member(name: &str) -> OrganizationCommand {
    OrganizationCommand::AddOrganizationMember {
        tenant: tenant(),
        customer_id: customer(name),
    }
}

#[test]
fn create_organization_records_the_trimmed_name_and_primary_customer() {
    OrganizationTester::with(services())
        .given_no_previous_events()
        .when(create(Some("  Acme, Inc. ")))
        .then_expect_events(vec![created()]);
}

#[test]
fn create_organization_is_refused_without_a_name() {
    for name in [None, Some(""), Some("  ")] {
        OrganizationTester::with(services())
            .given_no_previous_events()
            .when(create(name))
            .then_expect_error(OrganizationError::NameRequired);
    }
}

#[test]
fn create_organization_is_refused_when_the_id_already_exists() {
    OrganizationTester::with(services())
        .given(vec![created()])
        .when(create(Some("Other")))
        .then_expect_error(OrganizationError::AlreadyExists);
}

#[test]
fn add_organization_member_records_the_customer() {
    OrganizationTester::with(services())
        .given(vec![created()])
        .when(add_member("member_1"))
        .then_expect_events(vec![member_added("member_1")]);
}

#[test]
fn add_organization_member_is_refused_for_the_primary_customer() {
    OrganizationTester::with(services())
        .given(vec![created()])
        .when(add_member("primary"))
        .then_expect_error(OrganizationError::AlreadyMember);
}

#[test]
fn add_organization_member_is_refused_when_already_a_member() {
    OrganizationTester::with(services())
        .given(vec![created(), member_added("member_1")])
        .when(add_member("member_1"))
        .then_expect_error(OrganizationError::AlreadyMember);
}

#[test]
fn add_organization_member_is_refused_for_another_tenant() {
    OrganizationTester::with(services())
        .given(vec![created()])
        .when(OrganizationCommand::AddOrganizationMember {
            tenant: Tenant::new("merchant_2", Mode::Test),
            customer_id: customer("member_1"),
        })
        .then_expect_error(OrganizationError::NotFound);
}

#[test]
fn add_organization_member_is_refused_when_it_was_never_created() {
    OrganizationTester::with(services())
        .given_no_previous_events()
        .when(add_member("member_1"))
        .then_expect_error(OrganizationError::NotFound);
}

#[test]
fn members_lists_the_primary_first_then_members_in_the_order_they_joined() {
    let mut organization = Organization::default();
    assert_eq!(organization.members(), vec![]);
    for event in [created(), member_added("b"), member_added("a")] {
        organization.apply(event);
    }
    assert_eq!(
        organization.members(),
        vec![
            (customer("primary"), OrgRole::Primary),
            (customer("b"), OrgRole::Member),
            (customer("a"), OrgRole::Member),
        ]
    );
}

#[test]
fn stored_organization_created_is_camel_case_and_reads_back_equal() {
    let event = created();
    let stored = serde_json::to_value(&event).unwrap();
    assert_eq!(
        stored,
        json!({"OrganizationCreated": {
            "id": "org_1",
            "tenant": {"merchantId": "merchant_1", "mode": "test"},
            "name": "Acme, Inc.",
            "primaryCustomerId": "cust_primary",
            "at": "2026-01-02T03:04:05Z",
        }})
    );
    assert_eq!(
        serde_json::from_value::<OrganizationEvent>(stored).unwrap(),
        event
    );
    assert_eq!(
        serde_json::to_value(OrgRole::Primary).unwrap(),
        json!("primary")
    );
}
