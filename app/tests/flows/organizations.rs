//! A customer belongs to at most one organization, as primary or member: a rule across
//! organizations, refused by the log's `organization_members` claim, also when adds race.

use app::refusals::ALREADY_IN_ORGANIZATION;
use app::AppError;
use futures::future::join_all;
use projections::read_models::organization_list::OrganizationListProjection;

use crate::support::{assert_conflict, Fixture};

async fn organizations(f: &Fixture) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM organization_list")
        .fetch_one(&f.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_primary_customer_cannot_join_or_found_another_organization() {
    let f = Fixture::new().await;
    let alice = f.customer("alice@example.com").await;
    let bob = f.customer("bob@example.com").await;
    let acme = f
        .app
        .create_organization(&f.metadata, Some("Acme".into()), Some(alice.as_str()))
        .await
        .unwrap();
    let globex = f
        .app
        .create_organization(&f.metadata, Some("Globex".into()), Some(bob.as_str()))
        .await
        .unwrap();
    let globex_id = globex.id.clone().unwrap();

    let joined = f
        .app
        .add_organization_member(&f.metadata, globex_id.as_str(), Some(alice.as_str()))
        .await;
    assert_conflict(joined, ALREADY_IN_ORGANIZATION);
    let founded = f
        .app
        .create_organization(&f.metadata, Some("Initech".into()), Some(alice.as_str()))
        .await;
    assert_conflict(founded, ALREADY_IN_ORGANIZATION);
    assert_eq!(
        organizations(&f).await,
        2,
        "the refused create left nothing"
    );

    // Alice is still Acme's only, and Globex did not take her.
    let membership = OrganizationListProjection::membership(&f.pool, f.tenant(), alice.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            membership.organization_id.as_str(),
            membership.role.as_str()
        ),
        (acme.id.unwrap().as_str(), "primary")
    );
    let globex_now = f
        .app
        .organizations
        .current(globex_id.as_str())
        .await
        .unwrap();
    assert!(globex_now.member_ids.is_empty(), "{globex_now:?}");
}

#[tokio::test]
async fn a_member_cannot_join_another_organization() {
    let f = Fixture::new().await;
    let alice = f.customer("alice@example.com").await;
    let bob = f.customer("bob@example.com").await;
    let carol = f.customer("carol@example.com").await;
    let acme = f
        .app
        .create_organization(&f.metadata, Some("Acme".into()), Some(alice.as_str()))
        .await
        .unwrap()
        .id
        .unwrap();
    let globex = f
        .app
        .create_organization(&f.metadata, Some("Globex".into()), Some(bob.as_str()))
        .await
        .unwrap()
        .id
        .unwrap();

    let (_, members) = f
        .app
        .add_organization_member(&f.metadata, acme.as_str(), Some(carol.as_str()))
        .await
        .unwrap();
    let members: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m.customer_id.as_str(), m.role.as_str()))
        .collect();
    assert_eq!(
        members,
        [(alice.as_str(), "primary"), (carol.as_str(), "member")]
    );
    assert_conflict(
        f.app
            .add_organization_member(&f.metadata, globex.as_str(), Some(carol.as_str()))
            .await,
        ALREADY_IN_ORGANIZATION,
    );
    // Joining the same organization again is the organization's own refusal.
    assert_conflict(
        f.app
            .add_organization_member(&f.metadata, acme.as_str(), Some(carol.as_str()))
            .await,
        "Customer is already a member of this organization",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_joins_of_one_customer_to_many_organizations_one_succeeds() {
    let f = Fixture::new().await;
    let carol = f.customer("carol@example.com").await;
    let mut organizations = Vec::new();
    for n in 0..5 {
        let primary = f.customer(&format!("primary{n}@example.com")).await;
        let organization = f
            .app
            .create_organization(
                &f.metadata,
                Some(format!("Org {n}")),
                Some(primary.as_str()),
            )
            .await
            .unwrap();
        organizations.push(organization.id.unwrap());
    }
    let joins = organizations.iter().map(|organization| {
        let (app, metadata) = (f.app.clone(), f.metadata.clone());
        let (organization, carol) = (organization.clone(), carol.clone());
        tokio::spawn(async move {
            app.add_organization_member(&metadata, organization.as_str(), Some(carol.as_str()))
                .await
        })
    });
    let results: Vec<_> = join_all(joins)
        .await
        .into_iter()
        .map(|joined| joined.expect("the join ran"))
        .collect();
    let joined: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(joined.len(), 1, "{results:?}");
    for result in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(result, Err(AppError::Conflict { message, .. }) if message == ALREADY_IN_ORGANIZATION),
            "{result:?}"
        );
    }
    let membership = OrganizationListProjection::membership(&f.pool, f.tenant(), carol.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(membership.organization_id.as_str()),
        joined[0].0.id.as_ref().map(|id| id.as_str())
    );
    // No other organization holds her, in its events either.
    let mut holding = 0;
    for organization in &organizations {
        let current = f
            .app
            .organizations
            .current(organization.as_str())
            .await
            .unwrap();
        holding += usize::from(current.member_ids.contains(&carol));
    }
    assert_eq!(holding, 1);
}

#[tokio::test]
async fn a_deleted_customer_joins_nothing_and_leaves_the_member_list() {
    let f = Fixture::new().await;
    let alice = f.customer("alice@example.com").await;
    let carol = f.customer("carol@example.com").await;
    let dave = f.customer("dave@example.com").await;
    let acme = f
        .app
        .create_organization(&f.metadata, Some("Acme".into()), Some(alice.as_str()))
        .await
        .unwrap()
        .id
        .unwrap();
    f.app
        .add_organization_member(&f.metadata, acme.as_str(), Some(carol.as_str()))
        .await
        .unwrap();
    for customer in [&carol, &dave] {
        f.app
            .delete_customer(&f.metadata, customer.as_str(), false)
            .await
            .unwrap();
    }
    match f
        .app
        .add_organization_member(&f.metadata, acme.as_str(), Some(dave.as_str()))
        .await
    {
        Err(AppError::NotFound(message)) => {
            assert_eq!(message, "Customer not found or access denied")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let (_, members) = f
        .app
        .organization_of_customer(f.principal(), alice.as_str())
        .await
        .unwrap();
    let members: Vec<&str> = members.iter().map(|m| m.customer_id.as_str()).collect();
    assert_eq!(members, [alice.as_str()]);
}
