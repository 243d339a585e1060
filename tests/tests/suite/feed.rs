//! `GET /v1/events?after=&limit=`: a tenant's whole log in position order, a page at a time,
//! and never a page that a later write could slip in behind: an event whose transaction is
//! still running holds back every event after it.
//!
//! Transaction ids are the PostgreSQL server's, not a database's: any writing transaction on
//! the server (another test's database, another test run) holds the feed back while it runs.
//! So before reading what it has just written, a test waits with [`settle`] for the
//! transactions running at that moment to end. It never does so while holding one of its own
//! open: what the feed shows meanwhile is the point of those tests.

use std::time::{Duration, Instant};

use billstream_tests::{assert_error, send, TestApp};
use serde_json::{json, Value};

const BAD_LIMIT: &str = "limit must be between 1 and 1000";
const BAD_AFTER: &str = "after must be 0 or more";

/// Waits until every transaction running on the server now has ended, so that everything
/// committed so far is below the feed's line. Panics, naming the writers still running, if
/// that takes more than a minute.
async fn settle(app: &TestApp) {
    let horizon: i64 =
        sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
            .fetch_one(&app.pool)
            .await
            .expect("snapshot");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let settled: bool = sqlx::query_scalar(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint >= $1",
        )
        .bind(horizon)
        .fetch_one(&app.pool)
        .await
        .expect("snapshot");
        if settled {
            return;
        }
        if Instant::now() > deadline {
            let running: Vec<String> = sqlx::query_scalar(
                "SELECT format('%s xid %s in %s: %s', pid, backend_xid, datname, query) \
                 FROM pg_stat_activity WHERE backend_xid IS NOT NULL",
            )
            .fetch_all(&app.pool)
            .await
            .unwrap_or_default();
            panic!("transactions older than {horizon} still run after a minute: {running:#?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One page of the feed; panics unless it is a 200 with exactly `events`, `hasMore` and
/// `nextAfter`.
async fn page_as(app: &TestApp, key: &str, query: &str) -> Value {
    let (status, body) = app.get_as(key, &format!("/v1/events{query}")).await;
    assert_eq!(status, 200, "feed {query}: {body}");
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"))
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["events", "hasMore", "nextAfter"], "{body}");
    assert!(body["events"].is_array(), "{body}");
    assert!(body["hasMore"].is_boolean(), "{body}");
    assert!(body["nextAfter"].is_i64(), "{body}");
    body
}

async fn page(app: &TestApp, query: &str) -> Value {
    page_as(app, app.test_key(), query).await
}

fn events(page: &Value) -> Vec<Value> {
    page["events"].as_array().expect("events").clone()
}

fn positions(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e["position"].as_i64().unwrap_or_else(|| panic!("{e}")))
        .collect()
}

fn next_after(page: &Value) -> i64 {
    page["nextAfter"].as_i64().expect("nextAfter")
}

/// The whole feed `key` reads in one page; panics if it does not fit in one.
async fn whole_feed_as(app: &TestApp, key: &str) -> Vec<Value> {
    let page = page_as(app, key, "?limit=1000").await;
    assert_eq!(page["hasMore"], false, "{page}");
    events(&page)
}

/// Every event of the given customers, from their own events endpoint, in position order:
/// what their tenant's feed must hold.
async fn events_of_customers(app: &TestApp, key: &str, ids: &[&str]) -> Vec<Value> {
    let mut all = Vec::new();
    for id in ids {
        let (status, body) = app.get_as(key, &format!("/v1/customers/{id}/events")).await;
        assert_eq!(status, 200, "events of {id}: {body}");
        all.extend(body["events"].as_array().expect("events").iter().cloned());
    }
    all.sort_by_key(|e| e["position"].as_i64().expect("position"));
    all
}

/// Walks the feed from the start with pages of `limit`, checking every page, and returns all
/// the events it read.
async fn walk(app: &TestApp, limit: usize) -> Vec<Value> {
    let mut after = 0;
    let mut read = Vec::new();
    loop {
        let page = page(app, &format!("?after={after}&limit={limit}")).await;
        let events = events(&page);
        assert!(events.len() <= limit, "page over {limit}: {page}");
        let page_positions = positions(&events);
        assert!(
            page_positions.iter().all(|p| *p > after),
            "a page after {after} has {page_positions:?}"
        );
        match events.last() {
            Some(last) => assert_eq!(page["nextAfter"], last["position"], "{page}"),
            None => assert_eq!(next_after(&page), after, "{page}"),
        }
        let has_more = page["hasMore"].as_bool().expect("hasMore");
        if has_more {
            assert_eq!(
                events.len(),
                limit,
                "a page with more after it is full: {page}"
            );
        }
        after = next_after(&page);
        read.extend(events);
        if !has_more {
            break;
        }
        assert!(read.len() <= 10_000, "the walk does not end");
    }
    read
}

async fn update(app: &TestApp, id: &str, body: Value) {
    let (status, answer) = app.post(&format!("/v1/customers/{id}"), body).await;
    assert_eq!(status, 200, "update {id}: {answer}");
}

/// Some customers with a few events each; returns their ids.
async fn some_history(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..4 {
        let customer = app
            .create_customer(json!({"email": format!("walker{n}@example.com")}))
            .await;
        ids.push(customer["id"].as_str().unwrap().to_owned());
    }
    update(app, &ids[0], json!({"name": "Zero"})).await;
    update(
        app,
        &ids[2],
        json!({"email": "two@example.com", "name": "Two"}),
    )
    .await;
    update(app, &ids[0], json!({"billingCity": "Rome"})).await;
    let (status, body) = app.delete(&format!("/v1/customers/{}", ids[1])).await;
    assert_eq!(status, 200, "{body}");
    ids
}

/// Inserts an event row by hand on `executor` and returns its position.
async fn insert_event<'e, E>(executor: E, tenant: &str, aggregate_id: &str) -> i64
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata, tenant) \
         VALUES ('Customer', $1, 1, 'CustomerCreated', '1', '{\"CustomerCreated\":{}}', '{}', $2) \
         RETURNING position",
    )
    .bind(aggregate_id)
    .bind(tenant)
    .fetch_one(executor)
    .await
    .expect("insert event by hand")
}

fn test_tenant(app: &TestApp) -> String {
    format!("{}:test", app.merchant.merchant_id)
}

#[tokio::test]
async fn a_tenants_feed_is_its_whole_log_in_position_order_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let other = app.other_merchant().await;

    let mine = some_history(&app).await;
    let (status, body) = app
        .post_as(
            app.live_key(),
            "/v1/customers",
            json!({"email": "live@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let live = body["customer"]["id"].as_str().unwrap().to_owned();
    update(&app, &mine[3], json!({"name": "After the live one"})).await;
    let (status, body) = app
        .post_as(
            &other.test_secret_key,
            "/v1/customers",
            json!({"email": "walker0@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let others = body["customer"]["id"].as_str().unwrap().to_owned();
    settle(&app).await;

    // The test key's feed: exactly its customers' events, in position order.
    let mine_refs: Vec<&str> = mine.iter().map(String::as_str).collect();
    let expected = events_of_customers(&app, app.test_key(), &mine_refs).await;
    assert_eq!(expected.len(), 10, "{expected:?}");
    let page = page(&app, "").await;
    assert_eq!(
        page,
        json!({
            "events": expected,
            "hasMore": false,
            "nextAfter": expected.last().unwrap()["position"],
        })
    );
    let feed_positions = positions(&events(&page));
    assert!(
        feed_positions.windows(2).all(|w| w[0] < w[1]),
        "{feed_positions:?}"
    );
    let tenant = test_tenant(&app);
    assert!(
        events(&page)
            .iter()
            .all(|e| e["metadata"]["tenant"] == *tenant),
        "{page}"
    );

    // The live key's feed: the live customer's only.
    let expected_live = events_of_customers(&app, app.live_key(), &[live.as_str()]).await;
    assert_eq!(expected_live.len(), 1);
    assert_eq!(whole_feed_as(&app, app.live_key()).await, expected_live);

    // The other merchant's feed: its own customer's only, though it shares an email with ours.
    let expected_other =
        events_of_customers(&app, &other.test_secret_key, &[others.as_str()]).await;
    assert_eq!(expected_other.len(), 1);
    assert_eq!(
        whole_feed_as(&app, &other.test_secret_key).await,
        expected_other
    );

    // A tenant that never wrote reads an empty feed that stays where it was asked to start.
    assert_eq!(
        page_as(&app, &other.live_secret_key, "").await,
        json!({"events": [], "hasMore": false, "nextAfter": 0})
    );
    assert_eq!(
        page_as(&app, &other.live_secret_key, "?after=42").await,
        json!({"events": [], "hasMore": false, "nextAfter": 42})
    );
}

#[tokio::test]
async fn paging_with_limit_walks_every_event_exactly_once() {
    let app = TestApp::spawn().await;
    some_history(&app).await;
    settle(&app).await;
    let whole = whole_feed_as(&app, app.test_key()).await;
    assert_eq!(whole.len(), 9, "{whole:?}");

    for limit in [1, 2, 4, 9, 10, 1000] {
        let walked = walk(&app, limit).await;
        assert_eq!(walked, whole, "walking with limit {limit}");
    }

    // Reading on from the end finds nothing more and stays at the end.
    let last = whole.last().unwrap()["position"].as_i64().unwrap();
    assert_eq!(
        page(&app, &format!("?after={last}")).await,
        json!({"events": [], "hasMore": false, "nextAfter": last})
    );
    // Starting in the middle returns only what follows.
    let middle = whole[4]["position"].as_i64().unwrap();
    let rest = page(&app, &format!("?after={middle}&limit=3")).await;
    assert_eq!(
        rest,
        json!({"events": whole[5..8].to_vec(), "hasMore": true, "nextAfter": whole[7]["position"]})
    );

    // A new event appears after the cursor the walk ended on, and only it.
    let customer = app
        .create_customer(json!({"email": "late@example.com"}))
        .await;
    settle(&app).await;
    let next = page(&app, &format!("?after={last}")).await;
    let new_events = events(&next);
    assert_eq!(new_events.len(), 1, "{next}");
    assert_eq!(new_events[0]["aggregateId"], customer["id"]);
    assert_eq!(new_events[0]["type"], "CustomerCreated");
    assert_eq!(next["hasMore"], false);
    assert_eq!(next["nextAfter"], new_events[0]["position"]);
}

#[tokio::test]
async fn a_page_is_a_hundred_events_unless_a_limit_is_given() {
    let app = TestApp::spawn().await;
    let tenant = test_tenant(&app);
    // 150 events of 150 customers, written straight into the log.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata, tenant) \
         SELECT 'Customer', 'cust_bulk' || n, 1, 'CustomerCreated', '1', \
                '{\"CustomerCreated\":{}}', '{}', $1 \
         FROM generate_series(1, 150) AS n",
    )
    .bind(&tenant)
    .execute(&app.pool)
    .await
    .expect("bulk insert");
    settle(&app).await;

    let first = page(&app, "").await;
    let first_events = events(&first);
    assert_eq!(first_events.len(), 100, "{first}");
    assert_eq!(first["hasMore"], true);
    assert_eq!(first["nextAfter"], first_events[99]["position"]);
    let second = page(&app, &format!("?after={}", next_after(&first))).await;
    let second_events = events(&second);
    assert_eq!(second_events.len(), 50, "{second}");
    assert_eq!(second["hasMore"], false);

    let whole = page(&app, "?limit=1000").await;
    assert_eq!(whole["hasMore"], false);
    let mut both = first_events;
    both.extend(second_events);
    assert_eq!(events(&whole), both);
    let ids: Vec<&str> = both
        .iter()
        .map(|e| e["aggregateId"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=150).map(|n| format!("cust_bulk{n}")).collect();
    assert_eq!(ids, expected);
    // A page of exactly what is left has nothing more after it.
    let exact = page(&app, "?limit=150").await;
    assert_eq!(exact["hasMore"], false, "{exact}");
    let short = page(&app, "?limit=149").await;
    assert_eq!(short["hasMore"], true, "{short}");
}

#[tokio::test]
async fn limits_outside_1_to_1000_and_negative_positions_are_bad_requests() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"email": "one@example.com"}))
        .await;
    settle(&app).await;
    for query in ["?limit=0", "?limit=1001", "?limit=-1", "?after=0&limit=0"] {
        assert_error(
            &app.get(&format!("/v1/events{query}")).await,
            400,
            BAD_LIMIT,
        );
    }
    for query in ["?after=-1", "?after=-1&limit=10"] {
        assert_error(
            &app.get(&format!("/v1/events{query}")).await,
            400,
            BAD_AFTER,
        );
    }
    for query in ["?limit=ten", "?after=first", "?limit=1.5", "?from=0"] {
        let (status, body) = app.get(&format!("/v1/events{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{query}: {body}"
        );
    }
    // The bounds themselves are fine.
    for query in ["?limit=1", "?limit=1000", "?after=0"] {
        let page = page(&app, query).await;
        assert_eq!(events(&page).len(), 1, "{query}: {page}");
    }
}

#[tokio::test]
async fn the_feed_needs_a_secret_key() {
    let app = TestApp::spawn().await;
    let (status, body) = send(app.client.get(app.url("/v1/events"))).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = app.get_as("sk_live_nosuchkey", "/v1/events").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "Invalid API key");
}

/// The reason the feed exists in this shape. A position is handed out when an event is
/// inserted, but the event becomes visible when its transaction commits: an event can commit
/// after one with a higher position. A feed that returned the higher one first would move its
/// readers' cursors past the lower one, which they would then never see.
#[tokio::test]
async fn the_feed_waits_for_an_event_still_being_written_rather_than_skip_past_it() {
    let app = TestApp::spawn().await;
    let tenant = test_tenant(&app);
    let earlier = app
        .create_customer(json!({"email": "earlier@example.com"}))
        .await;
    settle(&app).await;
    let before = page(&app, "").await;
    assert_eq!(events(&before).len(), 1, "{before}");
    assert_eq!(events(&before)[0]["aggregateId"], earlier["id"]);
    let cursor = next_after(&before);

    // A writer takes a position and has not committed yet.
    let mut held = app.pool.begin().await.expect("begin");
    let held_position = insert_event(&mut *held, &tenant, "cust_heldopen").await;
    assert!(held_position > cursor);

    // Meanwhile a customer is created through the API: a higher position, committed.
    let customer = app
        .create_customer(json!({"email": "meanwhile@example.com"}))
        .await;
    let id = customer["id"].as_str().unwrap();
    let (status, body) = app.get(&format!("/v1/customers/{id}/events")).await;
    assert_eq!(status, 200, "{body}");
    let api_position = body["events"][0]["position"].as_i64().expect("position");
    assert!(
        api_position > held_position,
        "{api_position} <= {held_position}"
    );

    // The feed does not return it while the lower position may still appear.
    for query in [
        String::new(),
        format!("?after={cursor}"),
        format!("?after={cursor}&limit=1"),
        format!("?after={held_position}"),
    ] {
        let page = page(&app, &query).await;
        let returned = positions(&events(&page));
        assert!(
            !returned.contains(&api_position),
            "{query}: the feed skipped ahead of an uncommitted event: {page}"
        );
        assert!(
            returned.iter().all(|p| *p < held_position),
            "{query}: {page}"
        );
        assert_eq!(page["hasMore"], false, "{query}: {page}");
    }
    assert_eq!(
        page(&app, &format!("?after={cursor}")).await,
        json!({"events": [], "hasMore": false, "nextAfter": cursor})
    );

    held.commit().await.expect("commit");
    settle(&app).await;

    // Now both are there, the held one first.
    let after = page(&app, &format!("?after={cursor}")).await;
    let now = events(&after);
    assert_eq!(
        positions(&now),
        vec![held_position, api_position],
        "{after}"
    );
    assert_eq!(now[0]["aggregateId"], "cust_heldopen");
    assert_eq!(now[0]["type"], "CustomerCreated");
    assert_eq!(now[0]["data"], json!({}));
    assert_eq!(now[1]["aggregateId"], id);
    assert_eq!(after["hasMore"], false);
    assert_eq!(after["nextAfter"], api_position);
    // And the whole feed has all three, in position order.
    let whole = page(&app, "").await;
    assert_eq!(
        positions(&events(&whole)),
        vec![cursor, held_position, api_position]
    );
}

#[tokio::test]
async fn next_after_never_moves_past_an_uncommitted_event() {
    let app = TestApp::spawn().await;
    let tenant = test_tenant(&app);
    for n in 0..3 {
        app.create_customer(json!({"email": format!("settled{n}@example.com")}))
            .await;
    }
    settle(&app).await;

    let mut held = app.pool.begin().await.expect("begin");
    let held_position = insert_event(&mut *held, &tenant, "cust_heldopen").await;
    let mut late = Vec::new();
    for n in 0..3 {
        let customer = app
            .create_customer(json!({"email": format!("late{n}@example.com")}))
            .await;
        late.push(customer["id"].as_str().unwrap().to_owned());
    }

    // A reader walks the feed a page at a time while the writer is still open.
    let mut cursor = 0;
    let mut read = Vec::new();
    for _ in 0..10 {
        let page = page(&app, &format!("?after={cursor}&limit=1")).await;
        assert!(
            next_after(&page) < held_position,
            "nextAfter moved past the uncommitted position {held_position}: {page}"
        );
        cursor = next_after(&page);
        read.extend(events(&page));
        if page["hasMore"] == false {
            break;
        }
    }
    assert_eq!(read.len(), 3, "{read:?}");
    assert!(positions(&read).iter().all(|p| *p < held_position));
    // Asking again changes nothing while the writer is open.
    let again = page(&app, &format!("?after={cursor}")).await;
    assert_eq!(
        again,
        json!({"events": [], "hasMore": false, "nextAfter": cursor})
    );

    held.commit().await.expect("commit");
    settle(&app).await;

    // Reading on from where it stopped, the reader gets the held event, then the later ones.
    let rest = walk_from(&app, cursor).await;
    assert_eq!(rest.len(), 4, "{rest:?}");
    assert_eq!(rest[0]["aggregateId"], "cust_heldopen");
    assert_eq!(rest[0]["position"], held_position);
    let late_ids: Vec<&str> = rest[1..]
        .iter()
        .map(|e| e["aggregateId"].as_str().unwrap())
        .collect();
    assert_eq!(late_ids, late);
    read.extend(rest);
    // Nothing was read twice or missed.
    assert_eq!(read, whole_feed_as(&app, app.test_key()).await);
}

/// Walks on from `after` with pages of 2 until no more, returning what it read.
async fn walk_from(app: &TestApp, mut after: i64) -> Vec<Value> {
    let mut read = Vec::new();
    for _ in 0..100 {
        let page = page(app, &format!("?after={after}&limit=2")).await;
        after = next_after(&page);
        read.extend(events(&page));
        if page["hasMore"] == false {
            return read;
        }
    }
    panic!("the walk does not end");
}

#[tokio::test]
async fn an_event_rolled_back_leaves_a_gap_the_feed_reads_past() {
    let app = TestApp::spawn().await;
    let tenant = test_tenant(&app);
    let first = app
        .create_customer(json!({"email": "first@example.com"}))
        .await;
    settle(&app).await;
    let mut held = app.pool.begin().await.expect("begin");
    let held_position = insert_event(&mut *held, &tenant, "cust_rolledback").await;
    let second = app
        .create_customer(json!({"email": "second@example.com"}))
        .await;
    let waiting = page(&app, "").await;
    assert_eq!(events(&waiting).len(), 1, "{waiting}");
    assert_eq!(events(&waiting)[0]["aggregateId"], first["id"]);

    held.rollback().await.expect("rollback");
    settle(&app).await;

    let page = page(&app, &format!("?after={}", next_after(&waiting))).await;
    let now = events(&page);
    assert_eq!(now.len(), 1, "{page}");
    assert_eq!(now[0]["aggregateId"], second["id"]);
    assert!(now[0]["position"].as_i64().unwrap() > held_position);
    assert_eq!(page["hasMore"], false);
}

#[tokio::test]
async fn events_written_for_another_tenant_in_between_never_show_in_this_feed() {
    let app = TestApp::spawn().await;
    let other = app.other_merchant().await;
    let first = app
        .create_customer(json!({"email": "mine@example.com"}))
        .await;
    // Between two of ours: one written straight into the log for the other merchant, one
    // through the API by the other merchant, one through the API with our live key.
    insert_event(
        &app.pool,
        &format!("{}:test", other.merchant_id),
        "cust_theirs",
    )
    .await;
    let (status, body) = app
        .post_as(
            &other.test_secret_key,
            "/v1/customers",
            json!({"email": "mine@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post_as(
            app.live_key(),
            "/v1/customers",
            json!({"email": "mine@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let second = app
        .create_customer(json!({"email": "mine.too@example.com"}))
        .await;
    settle(&app).await;

    let feed = whole_feed_as(&app, app.test_key()).await;
    let ids: Vec<&Value> = feed.iter().map(|e| &e["aggregateId"]).collect();
    assert_eq!(ids, vec![&first["id"], &second["id"]], "{feed:?}");
    // Read a page at a time, the gap left by the others' events is crossed the same way.
    assert_eq!(walk(&app, 1).await, feed);
    let theirs = whole_feed_as(&app, &other.test_secret_key).await;
    assert_eq!(theirs.len(), 2, "{theirs:?}");
    assert_eq!(theirs[0]["aggregateId"], "cust_theirs");
    assert_eq!(whole_feed_as(&app, app.live_key()).await.len(), 1);
}
