//! `billstream merchants create --provider …` with the provider's settings, by flag or by
//! environment: what is refused, and what is stored.

use std::process::Output;

mod common;

use common::{billstream, FreshDatabase};

fn create(database: &FreshDatabase, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = billstream();
    command
        .args(["merchants", "create", "--name", "Acme"])
        .args(args)
        .env("DATABASE_URL", database.url());
    // The runner's own provider settings must not leak into the test.
    for name in [
        "STRIPE_SECRET_KEY",
        "STRIPE_PUBLISHABLE_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_BASE_URL",
        "DODO_PAYMENTS_API_KEY",
        "DODO_PAYMENTS_WEBHOOK_KEY",
        "DODO_PAYMENTS_MODE",
        "DODO_PAYMENTS_BASE_URL",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("run billstream")
}

fn merchant_id(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let merchant: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    merchant["merchantId"].as_str().unwrap().to_owned()
}

type Settings = (
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
);

fn stored(database: &FreshDatabase, merchant_id: &str) -> Settings {
    let url = database.url();
    let merchant_id = merchant_id.to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let pool = projections::testing::sqlx::PgPool::connect(&url)
                .await
                .unwrap();
            projections::testing::sqlx::query_as(
                "SELECT provider, stripe_secret_key, stripe_webhook_secret, stripe_base_url, \
                 dodo_api_key, dodo_base_url, dodo_mode FROM merchants WHERE id = $1",
            )
            .bind(merchant_id)
            .fetch_one(&pool)
            .await
            .unwrap()
        })
}

#[test]
fn a_provider_without_its_credentials_is_refused_naming_the_missing_flag() {
    let database = FreshDatabase::new();
    for (args, missing) in [
        (vec!["--provider", "stripe"], "--stripe-secret-key"),
        (
            vec![
                "--provider",
                "stripe",
                "--stripe-secret-key",
                "sk_test_1",
                "--stripe-publishable-key",
                "pk_test_1",
            ],
            "--stripe-webhook-secret",
        ),
        (vec!["--provider", "dodo"], "--dodo-api-key"),
        (
            vec![
                "--provider",
                "dodo",
                "--dodo-api-key",
                "k",
                "--dodo-webhook-secret",
                "whsec_not base64!",
            ],
            "--dodo-webhook-secret must be the whsec_",
        ),
        (
            vec![
                "--provider",
                "stripe",
                "--stripe-secret-key",
                "sk_test_1",
                "--stripe-publishable-key",
                "pk_test_1",
                "--stripe-webhook-secret",
                "whsec_1",
                "--stripe-base-url",
                "api.stripe.com",
            ],
            "--stripe-base-url must be an http:// or https:// URL",
        ),
    ] {
        let output = create(&database, &args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(missing), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn provider_settings_come_from_flags_or_the_environment_and_only_the_chosen_ones_are_kept() {
    let database = FreshDatabase::new();
    let stripe = create(
        &database,
        &["--provider", "stripe"],
        &[
            ("STRIPE_SECRET_KEY", "sk_test_from_env"),
            ("STRIPE_PUBLISHABLE_KEY", "pk_test_from_env"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_from_env"),
            // Not the chosen provider: not stored.
            ("DODO_PAYMENTS_API_KEY", "dodo_key"),
        ],
    );
    let (provider, secret, webhook, base, dodo_key, _, _) =
        stored(&database, &merchant_id(&stripe));
    assert_eq!(provider, "stripe");
    assert_eq!(secret.as_deref(), Some("sk_test_from_env"));
    assert_eq!(webhook.as_deref(), Some("whsec_from_env"));
    assert_eq!(base, "https://api.stripe.com");
    assert_eq!(dodo_key, None);

    let dodo = create(
        &database,
        &[
            "--provider",
            "dodo",
            "--dodo-api-key",
            "dodo_key",
            "--dodo-webhook-secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "--dodo-mode",
            "test",
        ],
        &[],
    );
    let (provider, secret, _, _, dodo_key, dodo_base, mode) =
        stored(&database, &merchant_id(&dodo));
    assert_eq!(provider, "dodo");
    assert_eq!(secret, None);
    assert_eq!(dodo_key.as_deref(), Some("dodo_key"));
    // Test mode is Dodo's test host unless told otherwise.
    assert_eq!(dodo_base, "https://test.dodopayments.com");
    assert_eq!(mode, "test");

    let sandbox = create(&database, &[], &[("STRIPE_SECRET_KEY", "sk_test_x")]);
    let (provider, secret, ..) = stored(&database, &merchant_id(&sandbox));
    assert_eq!((provider.as_str(), secret), ("sandbox", None));
}

#[test]
fn a_grace_period_is_stored_and_one_out_of_range_refused_before_anything_is_made() {
    let database = FreshDatabase::new();
    let refused = create(&database, &["--grace-period-days", "0"], &[]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("--grace-period-days must be from 1 to 60"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let id = merchant_id(&create(&database, &["--grace-period-days", "14"], &[]));
    let url = database.url();
    let (days, merchants): (i32, i64) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let pool = projections::testing::sqlx::PgPool::connect(&url)
                .await
                .unwrap();
            projections::testing::sqlx::query_as(
                "SELECT (SELECT grace_period_days FROM merchants WHERE id = $1), \
                        (SELECT count(*) FROM merchants)",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        });
    assert_eq!((days, merchants), (14, 1), "the refused one made nothing");
}
