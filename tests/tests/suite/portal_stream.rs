//! The portal's live stream (`GET /v1/customers/portal/stream`): a page open on one instance
//! hears of its customer's changes within a second, whichever instance made them (a Stripe
//! webhook, usage, a failed renewal); a reconnect with `Last-Event-ID` misses nothing and
//! repeats nothing; another customer's or tenant's changes never arrive; idle streams send
//! heartbeats; a bad credential is a 401 JSON error.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use billstream::merchants::{
    create_merchant_with_providers, Provider, ProviderSettings, StripeSettings,
};
use billstream::server::ServeOptions;
use billstream_tests::{assert_error, send, TestApp, TestDatabase};
use providers::fakes::FakeStripe;
use serde_json::{json, Value};

const STREAM: &str = "/v1/customers/portal/stream";
/// The bound: a change reaches an open page within a second.
const WITHIN: Duration = Duration::from_secs(1);
/// How long a test waits for what is not under the bound (setup's own events).
const SETTLE: Duration = Duration::from_secs(10);

/// One server-sent event block as it came over the wire.
#[derive(Debug, Clone, Default)]
struct Block {
    id: Option<String>,
    event: Option<String>,
    data: String,
    comment: Option<String>,
}

impl Block {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }

    fn position(&self) -> i64 {
        self.id.as_deref().unwrap().parse().unwrap()
    }
}

/// An open stream, read block by block from the response's chunks.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    /// The next block, or `None` when none came within `within` or the stream ended.
    async fn next_within(&mut self, within: Duration) -> Option<Block> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&raw));
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                _ => return None,
            }
        }
    }

    /// The next named event (heartbeats skipped), within `within`.
    async fn next_event(&mut self, within: Duration) -> Option<Block> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let block = self.next_within(left).await?;
            if block.event.is_some() {
                return Some(block);
            }
        }
    }

    /// Reads events until one of `event_type` arrives within `within`; answers every change
    /// read on the way, that one last.
    async fn until(&mut self, event_type: &str, within: Duration) -> Vec<Block> {
        let deadline = Instant::now() + within;
        let mut read = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(block) = self.next_event(left).await else {
                panic!("no {event_type} within {within:?}; read {read:#?}");
            };
            let found = block.json()["eventType"] == event_type;
            read.push(block);
            if found {
                return read;
            }
        }
    }
}

fn parse(raw: &str) -> Block {
    let mut block = Block::default();
    for line in raw.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            block.comment = Some(comment.trim().to_owned());
        } else if let Some((field, value)) = line.split_once(':') {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => block.id = Some(value.to_owned()),
                "event" => block.event = Some(value.to_owned()),
                "data" => block.data.push_str(value),
                _ => {}
            }
        }
    }
    block
}

/// Opens the stream at `path_and_query` on `app` with `bearer` (if any) and `last_event_id`
/// (if any); answers its status, and the stream once `ready` has arrived.
async fn open(
    app: &TestApp,
    path_and_query: &str,
    bearer: Option<&str>,
    last_event_id: Option<&str>,
) -> (Stream, Vec<Block>, Block) {
    let mut request = app.client.get(app.url(path_and_query));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut stream = Stream {
        response,
        buffer: String::new(),
    };
    // What was missed comes before `ready`.
    let mut replayed = Vec::new();
    loop {
        let block = stream.next_event(SETTLE).await.expect("ready");
        if block.event.as_deref() == Some("ready") {
            return (stream, replayed, block);
        }
        replayed.push(block);
    }
}

async fn customer(app: &TestApp, key: &str, external_id: &str) -> String {
    let (status, body) = app
        .post_as(
            key,
            "/v1/customers",
            json!({"email": format!("{external_id}@example.com"), "externalCustomerId": external_id}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["customer"]["id"].as_str().unwrap().to_owned()
}

async fn session(app: &TestApp, key: &str, external_id: &str) -> String {
    let (status, body) = app
        .post_as(
            key,
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": external_id}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["session"]["token"].as_str().unwrap().to_owned()
}

async fn grant(app: &TestApp, customer: &str, amount: i64) {
    let (status, body) = app
        .post(
            "/v1/credits/grants",
            json!({"customerId": customer, "featureSlug": "api_calls", "amount": amount,
                "source": "promotion"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// One unit of usage, recorded once per `idempotency_key`, through `app` with the merchant's `key`.
async fn usage(app: &TestApp, key: &str, external_id: &str, idempotency_key: &str) {
    let (status, body) = app
        .post_as(
            key,
            "/v1/usage",
            json!({"externalCustomerId": external_id, "featureSlug": "api_calls",
                "quantity": 1, "idempotencyKey": idempotency_key}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Two instances on one database; the database outlives both.
async fn two_instances() -> (TestApp, TestApp, TestDatabase) {
    let mut first = TestApp::spawn().await;
    let database = first.take_database().expect("database");
    let second = TestApp::spawn_on(&database.url).await;
    (first, second, database)
}

#[tokio::test]
async fn a_card_added_by_a_webhook_to_another_instance_reaches_the_open_page_within_a_second() {
    let (mut page_side, mut webhook_side, database) = two_instances().await;
    let stripe = FakeStripe::start().await;
    let settings = ProviderSettings {
        stripe: StripeSettings {
            secret_key: Some(stripe.secret_key().to_owned()),
            publishable_key: Some("pk_test_billstream".into()),
            webhook_secret: Some(stripe.webhook_secret().to_owned()),
            base_url: Some(stripe.base_url()),
        },
        ..ProviderSettings::new(Provider::Stripe)
    };
    let merchant = create_merchant_with_providers(&page_side.pool, "Stripe merchant", &settings)
        .await
        .unwrap();
    let key = merchant.test_secret_key.as_str();
    let customer_id = customer(&page_side, key, "user_web").await;
    let token = session(&page_side, key, "user_web").await;
    // As the hosted page's EventSource opens it: the session in the query.
    let (mut stream, _, _) =
        open(&page_side, &format!("{STREAM}?session={token}"), None, None).await;

    let (status, intent) = page_side
        .post_as(
            key,
            "/v1/customers/portal/create-setup-intent",
            json!({"externalCustomerId": "user_web"}),
        )
        .await;
    assert_eq!(status, 200, "{intent}");
    let intent_id = intent["stripe"]["intentId"].as_str().unwrap();
    let stripe_customer = stripe.setup_intent(intent_id).unwrap()["customer"]
        .as_str()
        .unwrap()
        .to_owned();
    stripe.add_card("pm_card_live", &stripe_customer, "visa", "4242", 11, 2031);
    let delivery = stripe
        .succeed_setup_intent(intent_id, "pm_card_live")
        .unwrap();
    let delivered = send(
        webhook_side
            .client
            .post(webhook_side.url(&format!("/v1/webhooks/stripe/{}", merchant.merchant_id)))
            .header("content-type", "application/json")
            .header("Stripe-Signature", &delivery.signature)
            .body(delivery.body.clone()),
    )
    .await;
    assert_eq!(delivered.0, 200, "{}", delivered.1);
    let answered = Instant::now();

    let read = stream.until("PaymentMethodAdded", WITHIN).await;
    assert!(answered.elapsed() <= WITHIN, "{:?}", answered.elapsed());
    let added = read.last().unwrap();
    assert_eq!(added.event.as_deref(), Some("payment_method"));
    let data = added.json();
    assert_eq!(data["type"], "payment_method");
    assert_eq!(data["aggregateType"], "PaymentMethod");
    assert_eq!(data["position"], added.position());
    // The card the page will read is the one the event names.
    let (_, overview) = page_side
        .get_as(&token, "/v1/customers/portal/overview")
        .await;
    assert_eq!(overview["portal"]["customer"]["id"], customer_id.as_str());
    assert_eq!(
        overview["portal"]["paymentMethods"][0]["id"],
        data["aggregateId"]
    );

    page_side.stop().await;
    webhook_side.stop().await;
    drop(database);
}

#[tokio::test]
async fn usage_consuming_credits_and_a_failed_renewal_reach_the_open_page_within_a_second() {
    let app = TestApp::spawn().await;
    let key = app.test_key().to_owned();
    let customer_id = customer(&app, &key, "user_renew").await;
    grant(&app, &customer_id, 10).await;
    // A secret key names the customer, as the merchant's own page would.
    let (mut stream, _, _) = open(
        &app,
        &format!("{STREAM}?externalCustomerId=user_renew"),
        Some(&key),
        None,
    )
    .await;

    usage(&app, &key, "user_renew", "u-1").await;
    let used = Instant::now();
    let read = stream.until("CreditsConsumed", WITHIN).await;
    assert!(used.elapsed() <= WITHIN);
    // Only this customer's changes arrive (its setup's too, when they committed after the
    // stream's start), the usage's as `credits`.
    assert!(
        read.iter().all(|b| b.json()["aggregateId"]
            .as_str()
            .unwrap()
            .starts_with(&customer_id)),
        "{read:#?}"
    );
    let usage_told = read
        .iter()
        .find(|b| b.json()["eventType"] == "UsageRecorded");
    assert_eq!(
        usage_told.expect("UsageRecorded").event.as_deref(),
        Some("credits")
    );
    assert_eq!(read.last().unwrap().event.as_deref(), Some("credits"));

    // A subscription charged to a good card, then moved to one that declines.
    let (status, plan) = app
        .post(
            "/v1/plans",
            json!({"name": "Pro", "currency": "USD", "interval": "month",
                "pricingData": {"components": [{"type": "flat", "name": "Pro", "amountCents": 2900}]}}),
        )
        .await;
    assert_eq!(status, 201, "{plan}");
    let billing = billstream_tests::billing::Billing::new(&app);
    let good = billing.card(&customer_id, "4242").await;
    let (status, started) = app
        .post(
            "/v1/subscriptions",
            json!({"customerId": customer_id, "planId": plan["plan"]["id"], "paymentMethodId": good}),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let declining = billing.card(&customer_id, "0341").await;
    let (status, moved) = app
        .post(
            "/v1/customers/portal/set-subscription-payment-method",
            json!({"externalCustomerId": "user_renew", "paymentMethodId": declining}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    stream
        .until("SubscriptionPaymentMethodChanged", SETTLE)
        .await;

    let period_end = billstream_tests::timestamp(&started["subscription"]["currentPeriodEnd"]);
    let (status, advanced) = app
        .post(
            "/v1/test-clock/advance",
            json!({"to": (period_end + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 200, "{advanced}");
    let renewed = Instant::now();
    let read = stream.until("PaymentFailed", WITHIN).await;
    assert!(renewed.elapsed() <= WITHIN);
    let failed = read.last().unwrap();
    assert_eq!(failed.event.as_deref(), Some("payment"));
    assert!(
        read.iter().any(|b| b.event.as_deref() == Some("invoice")),
        "the renewal's invoice is told too: {read:#?}"
    );
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing_on_any_instance() {
    let (mut first, mut second, database) = two_instances().await;
    let key = first.test_key().to_owned();
    let customer_id = customer(&first, &key, "user_resume").await;
    let other = customer(&first, &key, "user_other").await;
    grant(&first, &customer_id, 100).await;
    grant(&first, &other, 100).await;
    let path = format!("{STREAM}?externalCustomerId=user_resume");
    let (mut stream, _, _) = open(&first, &path, Some(&key), None).await;
    usage(&first, &key, "user_resume", "r-1").await;
    let heard = stream.until("CreditsConsumed", SETTLE).await;
    let last_heard = heard.last().unwrap().id.clone().unwrap();
    drop(stream);

    // While the page is away: its customer's changes, written on both instances, and another
    // customer's.
    usage(&first, &key, "user_resume", "r-2").await;
    usage(&second, &key, "user_resume", "r-3").await;
    usage(&second, &key, "user_other", "o-1").await;
    let (status, _) = first
        .post(
            &format!("/v1/customers/{customer_id}"),
            json!({"name": "Renamed"}),
        )
        .await;
    assert_eq!(status, 200);

    // The page comes back to the other instance.
    let (mut stream, replayed, ready) = open(&second, &path, Some(&key), Some(&last_heard)).await;
    let missed: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM events \
         WHERE (aggregate_type = 'Customer' AND aggregate_id = $1) \
            OR (aggregate_type = 'CreditLedger' AND aggregate_id LIKE $1 || '/%') \
         ORDER BY transaction_id, position",
    )
    .bind(&customer_id)
    .fetch_all(&first.pool)
    .await
    .unwrap();
    let last_heard: i64 = last_heard.parse().unwrap();
    let after = missed.iter().position(|p| *p == last_heard).unwrap() + 1;
    let missed = missed[after..].to_vec();
    // What the page missed comes read from the log before `ready`, and what this instance had
    // not yet published then, live after it: each once, in commit order.
    let mut told = replayed;
    while told.len() < missed.len() {
        told.push(stream.next_event(WITHIN).await.expect("a missed change"));
    }
    let told_ids: Vec<i64> = told.iter().map(Block::position).collect();
    assert_eq!(told_ids, missed, "{told:#?}");
    assert!(told
        .iter()
        .any(|b| b.json()["eventType"] == "CustomerDetailsUpdated"));
    // `ready` says up to where the page has been told: past what it had heard, or (this
    // instance not having published the missed changes yet) there, the rest coming live.
    assert!(ready.position() >= last_heard);

    // Then live again, with nothing told twice.
    usage(&first, &key, "user_resume", "r-4").await;
    let live = stream.until("CreditsConsumed", WITHIN).await;
    let mut told: HashSet<i64> = told_ids.iter().copied().collect();
    told.insert(last_heard);
    for block in &live {
        assert!(told.insert(block.position()), "told twice: {block:?}");
        assert!(block.json()["aggregateId"]
            .as_str()
            .unwrap()
            .starts_with(&customer_id));
    }

    // A Last-Event-ID that is no event of the log (here in the query, as a page that opens a
    // new EventSource itself sends it): the page is told to read everything again.
    let (_, replayed, _) = open(
        &second,
        &format!("{path}&lastEventId=999999999"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(replayed.len(), 1, "{replayed:#?}");
    assert_eq!(replayed[0].event.as_deref(), Some("reload"));

    first.stop().await;
    second.stop().await;
    drop(database);
}

#[tokio::test]
async fn another_customers_and_another_tenants_changes_never_reach_a_stream() {
    let app = TestApp::spawn().await;
    let key = app.test_key().to_owned();
    let mine = customer(&app, &key, "user_mine").await;
    let theirs = customer(&app, &key, "user_theirs").await;
    let other_merchant = app.other_merchant().await;
    // The same external id at another merchant, and in live mode.
    let foreign = customer(&app, &other_merchant.test_secret_key, "user_mine").await;
    let live = customer(&app, app.live_key(), "user_mine").await;
    let token = session(&app, &key, "user_mine").await;
    let (mut stream, _, _) = open(&app, STREAM, Some(&token), None).await;

    for id in [&theirs, &foreign, &live] {
        let by = if id == &foreign {
            other_merchant.test_secret_key.clone()
        } else if id == &live {
            app.live_key().to_owned()
        } else {
            key.clone()
        };
        let (status, body) = app
            .post_as(
                &by,
                &format!("/v1/customers/{id}"),
                json!({"name": "Not yours"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = app
        .post(&format!("/v1/customers/{mine}"), json!({"name": "Yours"}))
        .await;
    assert_eq!(status, 200);

    // Changes are told in commit order: had any of the others' reached this stream, it would
    // have come before this one.
    // (The customer's own creation may come first, if it committed after the stream began.)
    let read = stream.until("CustomerDetailsUpdated", WITHIN).await;
    assert!(
        read.iter()
            .all(|b| b.json()["aggregateId"] == mine.as_str()),
        "{read:#?}"
    );
}

#[tokio::test]
async fn a_bad_credential_is_a_401_json_error_and_a_key_needs_its_customer() {
    let app = TestApp::spawn().await;
    let key = app.test_key().to_owned();
    customer(&app, &key, "user_x").await;
    let url = app.url(&format!("{STREAM}?session=ps_notasession"));
    assert_error(
        &send(app.client.get(url)).await,
        401,
        "Invalid or expired portal session",
    );
    assert_error(
        &send(app.client.get(app.url(STREAM)).bearer_auth("ps_nope")).await,
        401,
        "Invalid or expired portal session",
    );
    let (status, _) = send(app.client.get(app.url(STREAM))).await;
    assert_eq!(status, 401);
    // A secret key in the query is not taken: URLs are logged.
    let (status, _) = send(
        app.client
            .get(app.url(&format!("{STREAM}?session={key}&externalCustomerId=user_x"))),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = send(app.client.get(app.url(STREAM)).bearer_auth(&key)).await;
    assert_eq!(status, 400);
    let (status, _) = send(
        app.client
            .get(app.url(&format!("{STREAM}?externalCustomerId=nobody")))
            .bearer_auth(&key),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_idle_stream_sends_heartbeats_and_ends_when_the_server_stops() {
    let mut app = TestApp::spawn_with(ServeOptions {
        stream_heartbeat: Some(Duration::from_millis(100)),
        ..ServeOptions::default()
    })
    .await;
    let key = app.test_key().to_owned();
    customer(&app, &key, "user_idle").await;
    let token = session(&app, &key, "user_idle").await;
    let (mut stream, _, _) = open(&app, &format!("{STREAM}?session={token}"), None, None).await;
    let mut heartbeats = 0;
    while heartbeats < 3 {
        let block = stream
            .next_within(WITHIN)
            .await
            .expect("a heartbeat within a second");
        // The customer's creation, committed just before the stream opened, may still be on
        // its way to the tailer: told late is harmless (a page reads its state again).
        if block.event.as_deref() == Some("customer") {
            continue;
        }
        assert!(block.event.is_none(), "{block:?}");
        assert_eq!(block.comment.as_deref(), Some("heartbeat"));
        heartbeats += 1;
    }

    // Shutdown does not wait on the open stream: it ends it.
    tokio::time::timeout(Duration::from_secs(5), app.stop())
        .await
        .expect("stopped while a stream was open");
    let mut ended = false;
    for _ in 0..20 {
        match stream.next_within(WITHIN).await {
            Some(block) if block.comment.is_some() => continue,
            Some(block) => panic!("{block:?}"),
            None => {
                ended = true;
                break;
            }
        }
    }
    assert!(ended);
}

#[tokio::test]
async fn a_write_held_open_in_another_database_does_not_hold_the_stream_back() {
    let app = TestApp::spawn().await;
    let key = app.test_key().to_owned();
    let customer_id = customer(&app, &key, "user_elsewhere").await;
    let (mut stream, _, _) = open(
        &app,
        &format!("{STREAM}?externalCustomerId=user_elsewhere"),
        Some(&key),
        None,
    )
    .await;
    // Another database of the same server, with a write in progress: its transaction id is
    // older than the change's, and the server-wide horizon would wait for it.
    let elsewhere = TestDatabase::create().await;
    let other = sqlx::PgPool::connect(&elsewhere.url).await.unwrap();
    let mut held = other.begin().await.unwrap();
    sqlx::query("CREATE TEMPORARY TABLE held (x int)")
        .execute(&mut *held)
        .await
        .unwrap();

    let (status, _) = app
        .post(
            &format!("/v1/customers/{customer_id}"),
            json!({"name": "Now"}),
        )
        .await;
    assert_eq!(status, 200);
    let changed = Instant::now();
    stream.until("CustomerDetailsUpdated", WITHIN).await;
    assert!(changed.elapsed() <= WITHIN);

    held.rollback().await.unwrap();
    other.close().await;
    drop(elsewhere);
}
