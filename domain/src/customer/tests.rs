use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use crate::clock::FixedClock;
use crate::customer::{
    Customer, CustomerCommand, CustomerDetails, CustomerError, CustomerEvent, CustomerServices,
    DetailField,
};
use crate::email::Email;
use crate::id::{CustomerId, SubscriptionId};
use crate::ports::{CustomerUniqueness, PortError};
use crate::tenant::{Mode, Tenant};

type CustomerTester = TestFramework<Customer>;

/// Other live customers of the tenant, as the uniqueness port would see them.
#[derive(Default)]
struct OtherCustomers {
    emails: Vec<&'static str>,
    external_ids: Vec<&'static str>,
    unavailable: bool,
}

#[async_trait]
impl CustomerUniqueness for OtherCustomers {
    async fn email_in_use(
        &self,
        _: &Tenant,
        email: &Email,
        _: Option<&CustomerId>,
    ) -> Result<bool, PortError> {
        if self.unavailable {
            return Err(PortError("database unavailable".into()));
        }
        Ok(self
            .emails
            .iter()
            .any(|other| other.to_lowercase() == email.normalized()))
    }

    async fn external_id_in_use(
        &self,
        _: &Tenant,
        external_id: &str,
        _: Option<&CustomerId>,
    ) -> Result<bool, PortError> {
        Ok(self.external_ids.contains(&external_id))
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn services_with(others: OtherCustomers) -> CustomerServices {
    CustomerServices {
        uniqueness: Arc::new(others),
        clock: Arc::new(FixedClock(now())),
    }
}

fn services() -> CustomerServices {
    services_with(OtherCustomers::default())
}

fn tenant() -> Tenant {
    Tenant::new("merchant_1", Mode::Test)
}

fn id() -> CustomerId {
    CustomerId::parse("cust_1").unwrap()
}

fn raw(pairs: &[(DetailField, Option<&str>)]) -> BTreeMap<DetailField, Option<String>> {
    pairs
        .iter()
        .map(|(field, value)| (*field, value.map(str::to_owned)))
        .collect()
}

fn create(email: Option<&str>, details: &[(DetailField, Option<&str>)]) -> CustomerCommand {
    CustomerCommand::CreateCustomer {
        id: id(),
        tenant: tenant(),
        email: email.map(str::to_owned),
        details: raw(details),
    }
}

fn update(email: Option<&str>, details: &[(DetailField, Option<&str>)]) -> CustomerCommand {
    CustomerCommand::UpdateCustomer {
        tenant: tenant(),
        email: email.map(str::to_owned),
        details: raw(details),
        allow_shared_email: false,
    }
}

fn created(email: &str) -> CustomerEvent {
    CustomerEvent::CustomerCreated {
        id: id(),
        tenant: tenant(),
        email: Email::parse(email).unwrap(),
        details: CustomerDetails {
            name: Some("Jane".into()),
            billing_city: Some("Berlin".into()),
            ..CustomerDetails::default()
        },
        at: now(),
    }
}

fn delete() -> CustomerCommand {
    CustomerCommand::DeleteCustomer {
        tenant: tenant(),
        canceled_subscriptions: Vec::new(),
    }
}

fn soft_deleted() -> CustomerEvent {
    CustomerEvent::SoftDeleted {
        at: now(),
        canceled_subscriptions: Vec::new(),
    }
}

#[test]
fn create_customer_records_the_email_and_details() {
    CustomerTester::with(services())
        .given_no_previous_events()
        .when(create(
            Some("Jane@Example.com"),
            &[
                (DetailField::Name, Some("Jane")),
                (DetailField::BillingCountry, Some("de")),
            ],
        ))
        .then_expect_events(vec![CustomerEvent::CustomerCreated {
            id: id(),
            tenant: tenant(),
            email: Email::parse("Jane@Example.com").unwrap(),
            details: CustomerDetails {
                name: Some("Jane".into()),
                billing_country: Some("DE".into()),
                ..CustomerDetails::default()
            },
            at: now(),
        }]);
}

#[test]
fn create_customer_is_refused_without_an_email() {
    CustomerTester::with(services())
        .given_no_previous_events()
        .when(create(None, &[]))
        .then_expect_error(CustomerError::EmailRequired);
    CustomerTester::with(services())
        .given_no_previous_events()
        .when(create(Some("  "), &[]))
        .then_expect_error(CustomerError::EmailRequired);
}

#[test]
fn create_customer_is_refused_with_a_malformed_email() {
    CustomerTester::with(services())
        .given_no_previous_events()
        .when(create(Some("not-an-email"), &[]))
        .then_expect_error(CustomerError::InvalidEmail);
}

/// Uniqueness on creation is the event store's claim, decided atomically with the append
/// (the HTTP tests show the refusal): the rule does not spend a round trip asking first, so it
/// decides even while the port could not answer.
#[test]
fn create_customer_leaves_uniqueness_to_the_claims_of_the_append() {
    let others = OtherCustomers {
        emails: vec!["jane@example.com"],
        external_ids: vec!["user_1"],
        unavailable: true,
    };
    CustomerTester::with(services_with(others))
        .given_no_previous_events()
        .when(create(
            Some("jane@example.com"),
            &[(DetailField::ExternalCustomerId, Some("user_1"))],
        ))
        .then_expect_events(vec![CustomerEvent::CustomerCreated {
            id: id(),
            tenant: tenant(),
            email: Email::parse("jane@example.com").unwrap(),
            details: CustomerDetails {
                external_customer_id: Some("user_1".into()),
                ..CustomerDetails::default()
            },
            at: now(),
        }]);
}

#[test]
fn create_customer_is_refused_with_an_invalid_country() {
    CustomerTester::with(services())
        .given_no_previous_events()
        .when(create(
            Some("jane@example.com"),
            &[(DetailField::BillingCountry, Some("Germany"))],
        ))
        .then_expect_error(CustomerError::InvalidField {
            field: "billingCountry",
            reason: "must be a two-letter ISO 3166-1 country code".into(),
        });
}

#[test]
fn create_customer_is_refused_when_the_id_already_exists() {
    CustomerTester::with(services())
        .given(vec![created("jane@example.com")])
        .when(create(Some("other@example.com"), &[]))
        .then_expect_error(CustomerError::AlreadyExists);
}

#[test]
fn change_email_reports_an_unavailable_uniqueness_check() {
    let others = OtherCustomers {
        unavailable: true,
        ..OtherCustomers::default()
    };
    CustomerTester::with(services_with(others))
        .given(vec![created("jane@example.com")])
        .when(update(Some("new@example.com"), &[]))
        .then_expect_error(CustomerError::Unavailable("database unavailable".into()));
}

#[test]
fn update_customer_changes_only_the_fields_given() {
    CustomerTester::with(services())
        .given(vec![created("jane@example.com")])
        .when(update(
            None,
            &[
                (DetailField::Name, Some("Jane Smith")),
                (DetailField::BillingCity, Some("Berlin")),
                (DetailField::TaxId, None),
            ],
        ))
        .then_expect_events(vec![CustomerEvent::CustomerDetailsUpdated {
            changes: [(DetailField::Name, Some("Jane Smith".to_owned()))].into(),
            at: now(),
        }]);
}

#[test]
fn update_customer_with_nothing_new_records_nothing() {
    CustomerTester::with(services())
        .given(vec![created("jane@example.com")])
        .when(update(
            Some("jane@example.com"),
            &[(DetailField::Name, Some("Jane"))],
        ))
        .then_expect_events(vec![]);
}

#[test]
fn update_customer_with_a_blank_value_clears_that_field() {
    CustomerTester::with(services())
        .given(vec![created("jane@example.com")])
        .when(update(None, &[(DetailField::BillingCity, Some(""))]))
        .then_expect_events(vec![CustomerEvent::CustomerDetailsUpdated {
            changes: [(DetailField::BillingCity, None)].into(),
            at: now(),
        }]);
}

#[test]
fn change_email_records_email_changed() {
    CustomerTester::with(services())
        .given(vec![created("jane@example.com")])
        .when(update(Some("jane@new.example.com"), &[]))
        .then_expect_events(vec![CustomerEvent::EmailChanged {
            email: Email::parse("jane@new.example.com").unwrap(),
            shared: false,
            at: now(),
        }]);
}

#[test]
fn change_email_is_refused_when_another_customer_has_it() {
    let others = OtherCustomers {
        emails: vec!["taken@example.com"],
        ..OtherCustomers::default()
    };
    CustomerTester::with(services_with(others))
        .given(vec![created("jane@example.com")])
        .when(update(Some("Taken@Example.com"), &[]))
        .then_expect_error(CustomerError::EmailTakenByAnother);
}

#[test]
fn change_email_to_a_taken_one_is_allowed_with_the_dangerous_flag() {
    let others = OtherCustomers {
        emails: vec!["taken@example.com"],
        ..OtherCustomers::default()
    };
    CustomerTester::with(services_with(others))
        .given(vec![created("jane@example.com")])
        .when(CustomerCommand::UpdateCustomer {
            tenant: tenant(),
            email: Some("taken@example.com".into()),
            details: BTreeMap::new(),
            allow_shared_email: true,
        })
        .then_expect_events(vec![CustomerEvent::EmailChanged {
            email: Email::parse("taken@example.com").unwrap(),
            shared: true,
            at: now(),
        }]);
}

#[test]
fn change_email_to_blank_is_refused() {
    CustomerTester::with(services())
        .given(vec![created("jane@example.com")])
        .when(update(Some(""), &[]))
        .then_expect_error(CustomerError::EmailRequired);
}

#[test]
fn change_external_id_is_refused_when_another_customer_has_it() {
    let others = OtherCustomers {
        external_ids: vec!["user_2"],
        ..OtherCustomers::default()
    };
    CustomerTester::with(services_with(others))
        .given(vec![created("jane@example.com")])
        .when(update(
            None,
            &[(DetailField::ExternalCustomerId, Some("user_2"))],
        ))
        .then_expect_error(CustomerError::ExternalIdTaken);
}

#[test]
fn change_email_is_refused_when_customer_is_deleted() {
    CustomerTester::with(services())
        .given(vec![created("jane@example.com"), soft_deleted()])
        .when(update(Some("new@example.com"), &[]))
        .then_expect_error(CustomerError::AlreadyDeleted);
}

#[test]
fn update_customer_is_refused_for_another_tenant() {
    CustomerTester::with(services())
        .given(vec![created("jane@example.com")])
        .when(CustomerCommand::UpdateCustomer {
            tenant: Tenant::new("merchant_1", Mode::Live),
            email: None,
            details: raw(&[(DetailField::Name, Some("Mallory"))]),
            allow_shared_email: false,
        })
        .then_expect_error(CustomerError::NotFound);
}

#[test]
fn update_customer_is_refused_when_it_was_never_created() {
    CustomerTester::with(services())
        .given_no_previous_events()
        .when(update(None, &[(DetailField::Name, Some("Jane"))]))
        .then_expect_error(CustomerError::NotFound);
}

#[test]
fn delete_customer_records_soft_deleted() {
    CustomerTester::with(services())
        .given(vec![created("jane@example.com")])
        .when(delete())
        .then_expect_events(vec![soft_deleted()]);
}

#[test]
fn delete_customer_is_refused_when_already_deleted() {
    CustomerTester::with(services())
        .given(vec![created("jane@example.com"), soft_deleted()])
        .when(delete())
        .then_expect_error(CustomerError::AlreadyDeleted);
}

#[test]
fn delete_customer_is_refused_for_another_merchant() {
    CustomerTester::with(services())
        .given(vec![created("jane@example.com")])
        .when(CustomerCommand::DeleteCustomer {
            canceled_subscriptions: Vec::new(),
            tenant: Tenant::new("merchant_2", Mode::Test),
        })
        .then_expect_error(CustomerError::NotFound);
}

#[test]
fn stored_events_leave_out_empty_details_and_read_back_equal() {
    let event = created("jane@example.com");
    let stored = serde_json::to_value(&event).unwrap();
    let details = &stored["CustomerCreated"]["details"];
    assert_eq!(
        details,
        &serde_json::json!({"name": "Jane", "billingCity": "Berlin"})
    );
    assert_eq!(
        serde_json::from_value::<CustomerEvent>(stored).unwrap(),
        event
    );
}

#[test]
fn a_cascading_delete_records_the_subscriptions_it_canceled() {
    let canceled = vec![SubscriptionId::parse("sub_1").unwrap()];
    CustomerTester::with(services())
        .given(vec![created("jane@example.com")])
        .when(CustomerCommand::DeleteCustomer {
            tenant: tenant(),
            canceled_subscriptions: canceled.clone(),
        })
        .then_expect_events(vec![CustomerEvent::SoftDeleted {
            at: now(),
            canceled_subscriptions: canceled,
        }]);
}

/// A `SoftDeleted` stored before version 2 existed, exactly as it was written then.
#[test]
fn a_version_1_soft_deleted_reads_back_as_the_current_version() {
    let stored = cqrs_es::persist::SerializedEvent {
        aggregate_id: "cust_1".into(),
        sequence: 2,
        aggregate_type: "Customer".into(),
        event_type: "SoftDeleted".into(),
        event_version: "1".into(),
        payload: serde_json::json!({"SoftDeleted": {"at": "2026-01-02T03:04:05Z"}}),
        metadata: serde_json::json!({}),
    };
    let current = crate::upcast::upcast(stored);
    assert_eq!(current.event_version, "2");
    let event: CustomerEvent = serde_json::from_value(current.payload).unwrap();
    assert_eq!(
        event,
        CustomerEvent::SoftDeleted {
            at: now(),
            canceled_subscriptions: Vec::new(),
        }
    );
    // The current version is left as it is.
    let written = serde_json::to_value(soft_deleted()).unwrap();
    assert_eq!(
        crate::upcast::upcast_payload("SoftDeleted", "2", written.clone()),
        written
    );
    use cqrs_es::DomainEvent;
    assert_eq!(soft_deleted().event_version(), "2");
}
