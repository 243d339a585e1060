//! The credits phases: usage recorded over HTTP across many customers and on one hot
//! customer, and balance reads, each against the raw phases of the same run.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::{drive, Http, RawPhases, Stats, Timing};

/// What the credits phases measured.
pub struct CreditsStats {
    pub customers: usize,
    pub usage: Stats,
    /// Raw create, run right before the usage phase.
    pub usage_raw: Stats,
    pub hot: Stats,
    pub balance: Stats,
    /// Raw get, run right before the balance reads.
    pub balance_raw: Stats,
}

/// Makes `customers` customers with a large grant each, then measures usage spread over
/// them, usage on one of them, and balance reads, usage and balance each alternating with the
/// raw phase it is compared with; `settle` runs before each phase, as
/// before every phase of the benchmark (a usage phase leaves a dead row version per usage
/// behind, which the next phase would otherwise read through until autovacuum came by).
pub async fn measure<S, F>(
    http: &Arc<Http>,
    clients: usize,
    timing: Timing,
    customers: usize,
    rounds: usize,
    raw: &RawPhases,
    settle: S,
) -> Result<CreditsStats, String>
where
    S: Fn() -> F,
    F: std::future::Future<Output = ()>,
{
    eprintln!("credits: {customers} customers with a grant each ...");
    let mut ids = Vec::with_capacity(customers);
    for n in 0..customers {
        let id = http
            .create(&format!("credits-{}-{n}@example.com", http.run))
            .await?;
        http.post_ok(
            "/v1/credits/grants",
            &json!({"customerId": id, "featureSlug": "api_calls", "amount": 1_000_000_000_i64}),
        )
        .await?;
        ids.push(id);
    }
    let ids = Arc::new(ids);
    let usage_of = |spread: bool, round: usize| {
        let http = http.clone();
        let ids = ids.clone();
        move |ctx: crate::Ctx| {
            let http = http.clone();
            let ids = ids.clone();
            async move {
                let customer = if spread {
                    &ids[(ctx.random % ids.len() as u64) as usize]
                } else {
                    &ids[0]
                };
                let key = format!("{}-{spread}-{round}-{}-{}", http.run, ctx.task, ctx.seq);
                let body = json!({"customerId": customer, "featureSlug": "api_calls",
                    "quantity": 1, "idempotencyKey": key});
                // The answer is checked without building it as a JSON tree, as reads are.
                http.post_naming("/v1/usage", &body, &["\"creditsConsumed\":1,"])
                    .await
            }
        }
    };
    // Usage and balance reads each alternate with the raw phase they are compared with, for
    // `rounds` rounds, as create does: this machine's speed drifts over tens of seconds.
    let (mut usage, mut usage_raw) = (Stats::default(), Stats::default());
    for round in 1..=rounds {
        settle().await;
        eprintln!("credits: raw create, round {round} ...");
        usage_raw = usage_raw.merge(raw.create(&format!("raw-usage{round}")).await);
        settle().await;
        eprintln!("credits: usage across {customers} customers, round {round} ...");
        usage = usage.merge(drive(clients, timing, usage_of(true, round)).await);
    }
    settle().await;
    eprintln!("credits: usage on one hot customer ...");
    let hot = drive(clients, timing, usage_of(false, 0)).await;
    let (mut balance, mut balance_raw) = (Stats::default(), Stats::default());
    for round in 1..=rounds {
        settle().await;
        eprintln!("credits: raw get, round {round} ...");
        balance_raw = balance_raw.merge(raw.get().await);
        settle().await;
        eprintln!("credits: balance reads, round {round} ...");
        let http = http.clone();
        let ids = ids.clone();
        balance = balance.merge(
            drive(clients, timing, move |ctx| {
                let http = http.clone();
                let ids = ids.clone();
                async move {
                    let customer = &ids[(ctx.random % ids.len() as u64) as usize];
                    // Checked as the get phase checks a customer: the answer names what was
                    // asked (its grant names the customer), without building it as a JSON
                    // tree.
                    http.get_naming(
                        &format!("/v1/credits/customers/{customer}/balance"),
                        &[customer, "\"featureSlug\":\"api_calls\""],
                    )
                    .await
                }
            })
            .await,
        );
    }
    Ok(CreditsStats {
        customers,
        usage,
        usage_raw,
        hot,
        balance,
        balance_raw,
    })
}

impl Http {
    /// `POST path` with a JSON body; the answer's JSON, or an error for anything but 2xx.
    pub async fn post_ok(&self, path: &str, body: &Value) -> Result<Value, String> {
        let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let (status, answer) = self
            .connections
            .send("POST", path, &self.key, Some(&body))
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "POST {path}: {status} {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        serde_json::from_slice(&answer).map_err(|e| format!("POST {path}: {e}"))
    }

    /// `GET path`; an error for anything but 2xx, or an answer without each of `needles`.
    pub async fn get_naming(&self, path: &str, needles: &[&str]) -> Result<(), String> {
        self.send_naming("GET", path, None, needles).await
    }

    /// `POST path` with a JSON body; an error for anything but 2xx, or an answer without each
    /// of `needles`.
    pub async fn post_naming(
        &self,
        path: &str,
        body: &Value,
        needles: &[&str],
    ) -> Result<(), String> {
        let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        self.send_naming("POST", path, Some(&body), needles).await
    }

    async fn send_naming(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        needles: &[&str],
    ) -> Result<(), String> {
        let (status, answer) = self
            .connections
            .send(method, path, &self.key, body)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let text = String::from_utf8_lossy(&answer);
        if !(200..300).contains(&status) || needles.iter().any(|n| !text.contains(n)) {
            return Err(format!("{method} {path}: {status} {text}"));
        }
        Ok(())
    }
}
