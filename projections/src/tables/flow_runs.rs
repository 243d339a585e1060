//! The durable records of multi-step flows: written before a flow's first step, marked finished
//! after its last, resumed by another instance when the one running it is gone. What a flow is
//! and how it resumes is the app's (`app::flows`); this is the storage.

use serde_json::Value;
use sqlx::PgPool;

/// An unfinished flow as recorded.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UnfinishedFlow {
    pub id: String,
    pub tenant: String,
    pub kind: String,
    pub input: Value,
    pub holder: Option<i64>,
    pub attempts: i32,
}

/// Records that flow `id` runs now, held by instance `holder`. A flow of that id recorded
/// before (a keyed request's retry, a resume) is held by `holder` from now on and counted as
/// another attempt; its kind and input stay as first recorded.
pub async fn begin(
    pool: &PgPool,
    id: &str,
    tenant: &str,
    kind: &str,
    input: &Value,
    holder: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO flow_runs (id, tenant, kind, input, holder) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, \
             attempts = flow_runs.attempts + 1",
    )
    .bind(id)
    .bind(tenant)
    .bind(kind)
    .bind(input)
    .bind(holder)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks flow `id` finished: done, or refused and taken back, either way nothing is left to do.
pub async fn finish(pool: &PgPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE flow_runs SET finished_at = now(), holder = NULL \
         WHERE id = $1 AND finished_at IS NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Lets go of flow `id` unfinished (it failed on our side): the next resume takes it.
pub async fn release(pool: &PgPool, id: &str, holder: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE flow_runs SET holder = NULL \
         WHERE id = $1 AND holder = $2 AND finished_at IS NULL",
    )
    .bind(id)
    .bind(holder)
    .execute(pool)
    .await?;
    Ok(())
}

/// The oldest unfinished flows, at most `limit`.
pub async fn unfinished(pool: &PgPool, limit: i64) -> Result<Vec<UnfinishedFlow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, tenant, kind, input, holder, attempts FROM flow_runs \
         WHERE finished_at IS NULL ORDER BY started_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Takes flow `id` over from `from` (an instance that is gone, or nobody); of racing takeovers
/// one wins.
pub async fn take_over(
    pool: &PgPool,
    id: &str,
    from: Option<i64>,
    holder: i64,
) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query(
        "UPDATE flow_runs SET holder = $3, attempts = attempts + 1 \
         WHERE id = $1 AND holder IS NOT DISTINCT FROM $2 AND finished_at IS NULL",
    )
    .bind(id)
    .bind(from)
    .bind(holder)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(taken == 1)
}

/// Whether a flow of `kind` for `tenant` whose record contains `record` (JSON containment)
/// is unfinished: running somewhere, or abandoned and waiting for a resume.
pub async fn any_unfinished(
    pool: &PgPool,
    tenant: &str,
    kind: &str,
    record: &Value,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM flow_runs \
         WHERE finished_at IS NULL AND tenant = $1 AND kind = $2 AND input @> $3)",
    )
    .bind(tenant)
    .bind(kind)
    .bind(record)
    .fetch_one(pool)
    .await
}

/// Whether flow `id` is recorded and finished.
pub async fn is_finished(pool: &PgPool, id: &str) -> Result<bool, sqlx::Error> {
    let finished: Option<bool> =
        sqlx::query_scalar("SELECT finished_at IS NOT NULL FROM flow_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(finished.unwrap_or(false))
}

/// Forgets flows finished longer than `retention_seconds` ago.
pub async fn expire(pool: &PgPool, retention_seconds: f64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM flow_runs \
         WHERE finished_at IS NOT NULL AND finished_at < now() - make_interval(secs => $1)",
    )
    .bind(retention_seconds)
    .execute(pool)
    .await?;
    Ok(())
}
