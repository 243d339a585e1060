//! The hosted portal page: `GET /portal?session=…` for `--portal-sessions` customers, each
//! with a card, a grant and three issued invoices, read by `--clients` concurrent clients,
//! each reading a whole page before asking for the next. The target is on the page's first
//! byte (the page's head goes as soon as the session is known, its tabs when read); the whole
//! answer is timed too.

use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::{drive, Http, Stats, Timing};

/// What the portal phase measured.
pub struct PortalStats {
    pub sessions: usize,
    pub page: Stats,
    /// Milliseconds to each answer's first byte, warm-up included, sorted.
    pub first_bytes: Vec<f64>,
}

impl PortalStats {
    /// The first byte's latency at percentile `p` (0 to 1).
    pub fn first_byte(&self, p: f64) -> Option<f64> {
        let last = self.first_bytes.len().checked_sub(1)?;
        Some(self.first_bytes[((last as f64) * p).round() as usize])
    }
}

/// Makes `sessions` customers worth looking at and a portal session of each, then reads
/// their pages.
pub async fn measure(
    http: &Arc<Http>,
    clients: usize,
    timing: Timing,
    sessions: usize,
) -> Result<PortalStats, String> {
    eprintln!("portal: {sessions} customers with a card, credits, invoices and a session ...");
    let mut tokens = Vec::with_capacity(sessions);
    for n in 0..sessions {
        let external = format!("portal-{}-{n}", http.run);
        let customer = http
            .post_ok(
                "/v1/customers",
                &json!({"email": format!("{external}@example.com"), "name": "Portal Bench",
                    "externalCustomerId": external}),
            )
            .await?;
        let id = customer["customer"]["id"]
            .as_str()
            .ok_or_else(|| format!("no customer id in {customer}"))?
            .to_owned();
        let intent = http
            .post_ok(
                "/v1/customers/portal/create-setup-intent",
                &json!({"externalCustomerId": external}),
            )
            .await?;
        let intent_id = intent["sandbox"]["intentId"]
            .as_str()
            .ok_or_else(|| format!("no sandbox intent in {intent}"))?;
        http.post_ok(
            &format!("/v1/customers/portal/setup-intents/{intent_id}/confirm"),
            &json!({"cardNumber": "4242424242424242", "expMonth": 12, "expYear": 2030}),
        )
        .await?;
        http.post_ok(
            "/v1/credits/grants",
            &json!({"customerId": id, "featureSlug": "api_calls", "amount": 1000}),
        )
        .await?;
        for amount in [1900, 2900, 4900] {
            let invoice = http
                .post_ok(
                    "/v1/invoices",
                    &json!({"customerId": id, "currency": "USD",
                        "lines": [{"description": "Consulting", "unitAmountCents": amount}]}),
                )
                .await?;
            let invoice_id = invoice["invoice"]["id"].as_str().unwrap_or_default();
            http.post_ok(&format!("/v1/invoices/{invoice_id}/finalize"), &json!({}))
                .await?;
        }
        let session = http
            .post_ok(
                "/v1/customers/portal/sessions",
                &json!({"externalCustomerId": external}),
            )
            .await?;
        tokens.push(
            session["session"]["token"]
                .as_str()
                .ok_or_else(|| format!("no session token in {session}"))?
                .to_owned(),
        );
    }
    let tokens = Arc::new(tokens);
    let first_bytes = Arc::new(Mutex::new(Vec::new()));
    eprintln!("portal: pages ...");
    let page = {
        let http = http.clone();
        let first_bytes = first_bytes.clone();
        drive(clients, timing, move |ctx| {
            let http = http.clone();
            let tokens = tokens.clone();
            let first_bytes = first_bytes.clone();
            async move {
                let token = &tokens[(ctx.random % tokens.len() as u64) as usize];
                let (status, body, first_byte) = http
                    .connections
                    .send_timed("GET", &format!("/portal?session={token}"), "", None)
                    .await
                    .map_err(|e| format!("GET /portal: {e}"))?;
                first_bytes
                    .lock()
                    .expect("first bytes")
                    .push(first_byte.as_secs_f64() * 1000.0);
                if status != 200 || !body.windows(4).any(|w| w == b"4242") {
                    return Err(format!(
                        "GET /portal: {status} {}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    ));
                }
                Ok(())
            }
        })
        .await
    };
    let mut first_bytes = std::mem::take(&mut *first_bytes.lock().expect("first bytes"));
    first_bytes.sort_by(f64::total_cmp);
    Ok(PortalStats {
        sessions,
        page,
        first_bytes,
    })
}
