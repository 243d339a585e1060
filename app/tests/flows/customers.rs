//! Customers: an email and an external id each belong to one live customer of a tenant
//! (guarded by the read model's claims, also when creates race), and a customer reads back as
//! it was at any version.

use app::customers::{CustomerChanges, NewCustomer};
use app::AppError;
use futures::future::join_all;
use projections::read_models::customer_list::{CustomerFilter, CustomerListProjection};

use crate::support::{assert_conflict, Fixture};

const EMAIL_TAKEN: &str = "A customer with this email already exists";
const EMAIL_TAKEN_BY_ANOTHER: &str = "Another customer with this email already exists. Use dangerouslyAllowSameEmailForDifferentCustomers to allow.";
const EXTERNAL_ID_TAKEN: &str = "A customer with this externalCustomerId already exists";

fn with_email(email: &str) -> NewCustomer {
    NewCustomer {
        email: Some(email.to_owned()),
        ..NewCustomer::default()
    }
}

fn with_external_id(email: &str, external_id: &str) -> NewCustomer {
    let mut new = with_email(email);
    new.fields.external_customer_id = Some(external_id.to_owned());
    new
}

fn email_change(email: &str) -> CustomerChanges {
    CustomerChanges {
        email: Some(Some(email.to_owned())),
        ..CustomerChanges::default()
    }
}

/// The tenant's live customers with `email` (compared as the read model stores it).
async fn customers_with_email(f: &Fixture, email: &str) -> usize {
    let filter = CustomerFilter {
        email: Some(email.to_owned()),
        ..CustomerFilter::default()
    };
    CustomerListProjection::list(&f.pool, f.tenant(), &filter)
        .await
        .unwrap()
        .customers
        .len()
}

#[tokio::test]
async fn an_email_is_one_customers_in_any_case() {
    let f = Fixture::new().await;
    let first = f
        .app
        .create_customer(&f.metadata, with_email("jane@example.com"))
        .await
        .unwrap();
    let second = f
        .app
        .create_customer(&f.metadata, with_email("JANE@Example.COM"))
        .await;
    assert_conflict(second, EMAIL_TAKEN);

    let (listed, _) = f
        .app
        .list_customers(f.principal(), Default::default())
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|c| c.customer.id.as_str()).collect();
    assert_eq!(ids, [first.id.as_str()], "the refused create left nothing");
}

#[tokio::test]
async fn a_deleted_customers_email_is_free_again() {
    let f = Fixture::new().await;
    let first = f.customer("reuse@example.com").await;
    f.app
        .delete_customer(&f.metadata, first.as_str(), false)
        .await
        .unwrap();
    let again = f
        .app
        .create_customer(&f.metadata, with_email("Reuse@example.com"))
        .await
        .unwrap();
    assert_ne!(again.id.as_str(), first.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_creates_with_one_email_exactly_one_succeeds() {
    let f = Fixture::new().await;
    let spellings = ["race@example.com", "Race@Example.com", "RACE@EXAMPLE.COM"];
    let creates = (0..12).map(|i| {
        let app = f.app.clone();
        let metadata = f.metadata.clone();
        let email = spellings[i % spellings.len()];
        tokio::spawn(async move { app.create_customer(&metadata, with_email(email)).await })
    });
    let results: Vec<_> = join_all(creates)
        .await
        .into_iter()
        .map(|joined| joined.expect("the create ran"))
        .collect();
    let created: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    for result in results.iter().filter(|r| r.is_err()) {
        assert_conflict(result.clone(), EMAIL_TAKEN);
    }
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customer_list WHERE lower(email) = 'race@example.com'",
    )
    .fetch_one(&f.pool)
    .await
    .unwrap();
    assert_eq!(stored, 1);
    assert_eq!(customers_with_email(&f, &created[0].email).await, 1);
}

#[tokio::test]
async fn an_external_id_is_one_customers() {
    let f = Fixture::new().await;
    let first = f
        .app
        .create_customer(&f.metadata, with_external_id("a@example.com", "user_1"))
        .await
        .unwrap();
    let second = f
        .app
        .create_customer(&f.metadata, with_external_id("b@example.com", "user_1"))
        .await;
    assert_conflict(second, EXTERNAL_ID_TAKEN);
    assert_eq!(customers_with_email(&f, "b@example.com").await, 0);

    // Nor can an update take it.
    let other = f.customer("c@example.com").await;
    let mut changes = CustomerChanges::default();
    changes.fields.external_customer_id = Some(Some("user_1".to_owned()));
    let updated = f
        .app
        .update_customer(&f.metadata, other.as_str(), changes)
        .await;
    assert_conflict(updated, EXTERNAL_ID_TAKEN);

    let holder = f
        .app
        .portal_customer(f.principal(), Some("user_1"))
        .await
        .unwrap();
    assert_eq!(holder.id, first.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_creates_with_one_external_id_exactly_one_succeeds() {
    let f = Fixture::new().await;
    let creates = (0..8).map(|i| {
        let app = f.app.clone();
        let metadata = f.metadata.clone();
        tokio::spawn(async move {
            let new = with_external_id(&format!("ext{i}@example.com"), "user_shared");
            app.create_customer(&metadata, new).await
        })
    });
    let results: Vec<_> = join_all(creates)
        .await
        .into_iter()
        .map(|joined| joined.expect("the create ran"))
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for result in results.iter().filter(|r| r.is_err()) {
        assert_conflict(result.clone(), EXTERNAL_ID_TAKEN);
    }
}

#[tokio::test]
async fn an_update_to_anothers_email_is_refused_unless_allowed() {
    let f = Fixture::new().await;
    f.customer("taken@example.com").await;
    let other = f.customer("other@example.com").await;

    let refused = f
        .app
        .update_customer(
            &f.metadata,
            other.as_str(),
            email_change("Taken@Example.com"),
        )
        .await;
    assert_conflict(refused, EMAIL_TAKEN_BY_ANOTHER);
    let unchanged = f
        .app
        .customer(f.principal(), other.as_str(), None, None)
        .await
        .unwrap();
    assert_eq!(unchanged.email, "other@example.com");

    let allowed = f
        .app
        .update_customer(
            &f.metadata,
            other.as_str(),
            CustomerChanges {
                allow_shared_email: true,
                ..email_change("taken@example.com")
            },
        )
        .await
        .unwrap();
    assert_eq!(allowed.email, "taken@example.com");
}

#[tokio::test]
async fn a_customer_reads_back_as_it_was_at_each_version() {
    let f = Fixture::new().await;
    let id = f.customer("first@example.com").await;
    f.app
        .update_customer(&f.metadata, id.as_str(), email_change("second@example.com"))
        .await
        .unwrap();
    let mut rename = CustomerChanges::default();
    rename.fields.name = Some(Some("Jane".to_owned()));
    f.app
        .update_customer(&f.metadata, id.as_str(), rename)
        .await
        .unwrap();

    let read = |version| f.app.customer(f.principal(), id.as_str(), None, version);
    let first = read(Some(1)).await.unwrap();
    assert_eq!(
        (first.email.as_str(), first.name),
        ("first@example.com", None)
    );
    let second = read(Some(2)).await.unwrap();
    assert_eq!(
        (second.email.as_str(), second.name),
        ("second@example.com", None)
    );
    let now = read(None).await.unwrap();
    assert_eq!(
        (now.email.as_str(), now.name.as_deref()),
        ("second@example.com", Some("Jane"))
    );
    assert!(first.updated_at < now.updated_at);

    // A deleted customer is gone now, but still shows as it was.
    f.app
        .delete_customer(&f.metadata, id.as_str(), false)
        .await
        .unwrap();
    assert!(matches!(read(None).await, Err(AppError::NotFound(_))));
    let before_delete = read(Some(3)).await.unwrap();
    assert_eq!(before_delete.deleted_at, None);
    assert_eq!(before_delete.name.as_deref(), Some("Jane"));
}

/// A customer that took an email with `dangerouslyAllowSameEmailForDifferentCustomers` still
/// holds it against creates and plain updates.
#[tokio::test]
async fn a_shared_email_is_still_taken_for_everyone_else() {
    let f = Fixture::new().await;
    let holder = f.customer("shared@example.com").await;
    let sharer = f.customer("sharer@example.com").await;
    f.app
        .update_customer(
            &f.metadata,
            sharer.as_str(),
            CustomerChanges {
                allow_shared_email: true,
                ..email_change("shared@example.com")
            },
        )
        .await
        .unwrap();
    // The exclusive holder leaves: the sharer alone holds it now.
    f.app
        .delete_customer(&f.metadata, holder.as_str(), false)
        .await
        .unwrap();

    assert_conflict(
        f.app
            .create_customer(&f.metadata, with_email("Shared@Example.com"))
            .await,
        EMAIL_TAKEN,
    );
    let other = f.customer("other@example.com").await;
    assert_conflict(
        f.app
            .update_customer(
                &f.metadata,
                other.as_str(),
                email_change("shared@example.com"),
            )
            .await,
        EMAIL_TAKEN_BY_ANOTHER,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_updates_to_one_email_exactly_one_succeeds() {
    let f = Fixture::new().await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(f.customer(&format!("before{n}@example.com")).await);
    }
    let updates = ids.iter().map(|id| {
        let (app, metadata, id) = (f.app.clone(), f.metadata.clone(), id.clone());
        tokio::spawn(async move {
            app.update_customer(&metadata, id.as_str(), email_change("wanted@example.com"))
                .await
        })
    });
    let results: Vec<_> = join_all(updates)
        .await
        .into_iter()
        .map(|joined| joined.expect("the update ran"))
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for result in results.iter().filter(|r| r.is_err()) {
        assert_conflict(result.clone(), EMAIL_TAKEN_BY_ANOTHER);
    }
    assert_eq!(customers_with_email(&f, "wanted@example.com").await, 1);
}
