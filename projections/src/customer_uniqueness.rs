use async_trait::async_trait;
use domain::email::Email;
use domain::id::CustomerId;
use domain::ports::{CustomerUniqueness, PortError};
use domain::tenant::Tenant;
use sqlx::PgPool;

/// Answers the Customer rules' uniqueness questions from the `customer_claims` guard.
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
        kind: &str,
        value: &str,
        except: Option<&CustomerId>,
    ) -> Result<bool, PortError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM customer_claims \
             WHERE tenant = $1 AND kind = $2 AND value = $3 AND customer_id <> $4)",
        )
        .bind(tenant.key())
        .bind(kind)
        .bind(value)
        .bind(except.map(CustomerId::as_str).unwrap_or(""))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| PortError(e.to_string()))
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
        self.claimed(tenant, "email", &email.normalized(), except)
            .await
    }

    async fn external_id_in_use(
        &self,
        tenant: &Tenant,
        external_id: &str,
        except: Option<&CustomerId>,
    ) -> Result<bool, PortError> {
        self.claimed(tenant, "external_id", external_id, except)
            .await
    }
}
