use async_trait::async_trait;
use domain::email::Email;
use domain::id::CustomerId;
use domain::ports::{CustomerUniqueness, PortError};
use domain::tenant::Tenant;
use sqlx::PgPool;

/// What a customer can hold that no other live customer of its tenant may.
#[derive(Debug, Clone, Copy)]
enum Claim {
    Email,
    ExternalId,
}

/// Answers the Customer rules' uniqueness questions from `customer_list`'s live rows.
#[derive(Clone)]
pub struct PgCustomerUniqueness {
    pool: PgPool,
}

impl PgCustomerUniqueness {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn claimed(
        &self,
        tenant: &Tenant,
        kind: Claim,
        value: &str,
        except: Option<&CustomerId>,
    ) -> Result<bool, PortError> {
        sqlx::query_scalar(holders_query(kind))
            .bind(tenant.key())
            .bind(value)
            .bind(except.map(CustomerId::as_str).unwrap_or(""))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| PortError(e.to_string()))
    }
}

/// Whether a live customer of tenant `$1` other than `$3` has value `$2`. The conditions are
/// spelled out so each half matches its partial index.
fn holders_query(kind: Claim) -> &'static str {
    match kind {
        Claim::Email => {
            "SELECT EXISTS (SELECT 1 FROM customer_list WHERE deleted_at IS NULL \
                 AND NOT email_shared AND tenant = $1 AND email_key = $2 AND id <> $3) \
             OR EXISTS (SELECT 1 FROM customer_list WHERE deleted_at IS NULL \
                 AND email_shared AND tenant = $1 AND email_key = $2 AND id <> $3)"
        }
        Claim::ExternalId => {
            "SELECT EXISTS (SELECT 1 FROM customer_list WHERE deleted_at IS NULL \
                 AND tenant = $1 AND external_customer_id = $2 AND id <> $3)"
        }
    }
}

#[async_trait]
impl CustomerUniqueness for PgCustomerUniqueness {
    async fn email_in_use(
        &self,
        tenant: &Tenant,
        email: &Email,
        except: Option<&CustomerId>,
    ) -> Result<bool, PortError> {
        self.claimed(tenant, Claim::Email, &email.normalized(), except)
            .await
    }

    async fn external_id_in_use(
        &self,
        tenant: &Tenant,
        external_id: &str,
        except: Option<&CustomerId>,
    ) -> Result<bool, PortError> {
        self.claimed(tenant, Claim::ExternalId, external_id, except)
            .await
    }
}
