//! Merchants and their secret keys. A key is shown once, when it is made; only its SHA-256
//! is stored.

use domain::tenant::Mode;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// The payment provider a merchant bills through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    Sandbox,
    Stripe,
    Dodo,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Sandbox => "sandbox",
            Provider::Stripe => "stripe",
            Provider::Dodo => "dodo",
        }
    }
}

/// A new merchant and its two secret keys, as `billstream merchants create` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMerchant {
    pub merchant_id: String,
    pub test_secret_key: String,
    pub live_secret_key: String,
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Creates a merchant with one test and one live key, in one transaction.
pub async fn create_merchant(
    pool: &PgPool,
    name: &str,
    provider: Provider,
) -> Result<NewMerchant, sqlx::Error> {
    let merchant_id = format!("merchant_{}", uuid::Uuid::now_v7().simple());
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO merchants (id, name, provider) VALUES ($1, $2, $3)")
        .bind(&merchant_id)
        .bind(name)
        .bind(provider.as_str())
        .execute(&mut *tx)
        .await?;
    let mut keys = Vec::new();
    for mode in [Mode::Test, Mode::Live] {
        // 43 alphanumeric characters carry more than 256 bits of randomness.
        let secret = format!("sk_{}_{}", mode.as_str(), random_token(43));
        sqlx::query(
            "INSERT INTO api_keys (id, merchant_id, mode, secret_hash) VALUES ($1, $2, $3, $4)",
        )
        .bind(format!("key_{}", uuid::Uuid::now_v7().simple()))
        .bind(&merchant_id)
        .bind(mode.as_str())
        .bind(hash_secret(&secret))
        .execute(&mut *tx)
        .await?;
        keys.push(secret);
    }
    tx.commit().await?;
    let live_secret_key = keys.pop().unwrap_or_default();
    let test_secret_key = keys.pop().unwrap_or_default();
    Ok(NewMerchant {
        merchant_id,
        test_secret_key,
        live_secret_key,
    })
}
