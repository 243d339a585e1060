//! The hosted portal page in a real browser (headless Chromium over WebDriver): every tab with
//! its items, adding a sandbox card, set default and the refused remove, a purchase that a
//! double click makes once, the tabs by keyboard, an expired session, a phone's width, and an
//! axe-core scan. Screenshots of each tab go to `target/portal-screenshots/`.

use billstream_tests::billing::Billing;
use billstream_tests::browser::{axe_core, Browser};
use billstream_tests::TestApp;
use serde_json::{json, Value};

const RETURN_URL: &str = "https://shop.example.com/account";
const TABS: [&str; 4] = ["methods", "invoices", "payments", "credits"];

/// A customer with what each tab shows: a visa 4242 charged for a subscription (a paid
/// INV-0001), credits partly used and, with `failure`, a newer card ending 0341 whose charge
/// of a second invoice failed.
struct Customer {
    id: String,
    plan_id: String,
    good_card: String,
    declining_card: Option<String>,
}

async fn customer(app: &TestApp, failure: bool) -> Customer {
    let id = app
        .create_customer(json!({"email": "jane@example.com", "name": "Jane Doe",
            "externalCustomerId": "user_jane"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let billing = Billing::new(app);
    let good_card = billing.card(&id, "4242").await;
    let (_, plan_id) = billing.subscription(&id, &good_card).await;
    let declining_card = if failure {
        let card = billing.card(&id, "0341").await;
        let (status, draft) = app
            .post(
                "/v1/invoices",
                json!({"customerId": id, "currency": "usd", "lines": [
                    {"description": "Onboarding", "quantity": 1, "unitAmountCents": 5000}]}),
            )
            .await;
        assert_eq!(status, 201, "{draft}");
        let invoice = draft["invoice"]["id"].as_str().unwrap().to_owned();
        let (status, body) = app
            .post(&format!("/v1/invoices/{invoice}/finalize"), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = app
            .post(&format!("/v1/invoices/{invoice}/pay"), json!({}))
            .await;
        assert_eq!(status, 402, "the 0341 card declines: {body}");
        Some(card)
    } else {
        None
    };
    let now = app_now(app).await;
    let (status, body) = app
        .post(
            "/v1/credits/grants",
            json!({"customerId": id, "featureSlug": "api_calls", "amount": 1000,
                "source": "promotion", "expiresAt": now + chrono::Duration::days(30)}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post(
            "/v1/usage",
            json!({"customerId": id, "featureSlug": "api_calls", "quantity": 250,
                "idempotencyKey": "portal-page-usage"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    Customer {
        id,
        plan_id,
        good_card,
        declining_card,
    }
}

/// The tenant's now, from the app's clock.
async fn app_now(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    let (status, clock) = app.get("/v1/test-clock").await;
    assert_eq!(status, 200, "{clock}");
    billstream_tests::timestamp(&clock["testClock"]["now"])
}

/// A portal session for the customer, with the merchant's return URL: its page's URL.
async fn session_url(app: &TestApp) -> String {
    let (status, body) = app
        .post(
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": "user_jane", "returnUrl": RETURN_URL}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["session"]["returnUrl"], RETURN_URL);
    // The page is asked for on the address the test reaches, whatever the public URL says.
    let token = body["session"]["token"].as_str().unwrap();
    app.url(&format!("/portal?session={token}"))
}

async fn open(browser: &Browser, url: &str) {
    browser.client.goto(url).await.expect("open the page");
    browser
        .wait_until(
            "the page's script",
            "return document.readyState === 'complete'",
        )
        .await;
}

async fn select_tab(browser: &Browser, tab: &str) {
    browser
        .run(&format!("document.getElementById('tab-{tab}').click()"))
        .await;
    browser
        .wait_until(
            &format!("the {tab} panel"),
            &format!("return !document.getElementById('panel-{tab}').hidden"),
        )
        .await;
}

#[tokio::test]
async fn every_tab_shows_what_the_seed_lists() {
    let app = TestApp::spawn().await;
    let customer = customer(&app, true).await;
    let url = session_url(&app).await;
    let browser = Browser::start(1100, 1000).await;
    open(&browser, &url).await;

    let methods = browser.text("#panel-methods").await;
    for expected in ["Visa", "4242", "0341", "Expires 12/2030", "Default"] {
        assert!(methods.contains(expected), "{expected} in {methods}");
    }
    browser.screenshot("methods").await;

    select_tab(&browser, "invoices").await;
    let invoices = browser.text("#panel-invoices").await;
    for expected in [
        "INV-0001", "INV-0002", "Paid", "Open", "Invoice", "Issued", "$29.00",
    ] {
        assert!(invoices.contains(expected), "{expected} in {invoices}");
    }
    // The PDF button fetches the document with the session, as a click does.
    let pdf = browser
        .client
        .execute_async(
            "const done = arguments[0];
             const url = document.querySelector('[data-action=pdf]').dataset.url;
             const token = document.getElementById('portal').dataset.session;
             fetch(url, {headers: {Authorization: 'Bearer ' + token}})
               .then(r => done([r.status, r.headers.get('content-type')]));",
            vec![],
        )
        .await
        .expect("fetch a PDF");
    assert_eq!(pdf, json!([200, "application/pdf"]));
    browser.screenshot("invoices").await;

    select_tab(&browser, "payments").await;
    let payments = browser.text("#panel-payments").await;
    for expected in [
        "$50.00",
        "Failed",
        "Your card was declined.",
        "$29.00",
        "Succeeded",
    ] {
        assert!(payments.contains(expected), "{expected} in {payments}");
    }
    let badge_colour = browser
        .run("return getComputedStyle(document.querySelector('#panel-payments .badge-bad')).backgroundColor")
        .await;
    assert_ne!(
        badge_colour,
        json!("rgba(0, 0, 0, 0)"),
        "a failed badge is coloured"
    );
    browser.screenshot("payments").await;

    select_tab(&browser, "credits").await;
    let credits = browser.text("#panel-credits").await;
    assert!(credits.contains("750 of 1000 left"), "{credits}");
    assert!(credits.contains("next expiry"), "{credits}");
    let meter = browser
        .run(
            "const m = document.querySelector('#panel-credits progress'); return [m.value, m.max];",
        )
        .await;
    assert_eq!(meter, json!([750, 1000]));
    browser.screenshot("credits").await;

    // Remove is refused while the subscription is charged to the card, with the API's reason.
    select_tab(&browser, "methods").await;
    let good = &customer.good_card;
    browser
        .run(&format!(
            "document.querySelector('[data-action=remove][data-id=\"{good}\"]').click()"
        ))
        .await;
    browser
        .wait_until(
            "the refusal's reason",
            &format!(
                "return document.querySelector('[data-error-for=\"{good}\"]').innerText.length > 0"
            ),
        )
        .await;
    let (_, api_refusal) = app
        .delete(&format!("/v1/customers/portal/payment-methods/{good}"))
        .await;
    let shown = browser.text(&format!("[data-error-for=\"{good}\"]")).await;
    assert_eq!(shown, api_refusal["error"].as_str().unwrap());

    // Make the other card the default: the badge moves, and the first one can then go.
    let other = customer.declining_card.as_deref().unwrap();
    browser
        .run(&format!(
            "document.querySelector('[data-action=set-default][data-id=\"{other}\"]').click()"
        ))
        .await;
    browser
        .wait_until(
            "the default to move",
            &format!("return !!document.querySelector('[data-method=\"{other}\"] .badge-good')"),
        )
        .await;
    browser
        .run(&format!(
            "document.querySelector('[data-action=remove][data-id=\"{good}\"]').click()"
        ))
        .await;
    browser
        .wait_until(
            "the removed card to go",
            &format!("return !document.querySelector('[data-method=\"{good}\"]')"),
        )
        .await;
    browser.close().await;
}

#[tokio::test]
async fn a_sandbox_card_is_added_and_a_decline_shows_the_provider_s_message() {
    let app = TestApp::spawn().await;
    customer(&app, false).await;
    let url = session_url(&app).await;
    let browser = Browser::start(1100, 1000).await;
    open(&browser, &url).await;
    browser
        .run("document.getElementById('add-card').click()")
        .await;
    browser
        .wait_until(
            "the card form",
            "return !document.getElementById('card-form').hidden",
        )
        .await;

    let fill = |number: &str| {
        format!(
            "document.getElementById('card-number').value = '{number}';
             document.getElementById('card-exp-month').value = '12';
             document.getElementById('card-exp-year').value = '2031';
             document.getElementById('card-save').click();"
        )
    };
    browser.run(&fill("4000 0000 0000 0002")).await;
    browser
        .wait_until(
            "the decline",
            "return document.getElementById('add-card-error').innerText.length > 0",
        )
        .await;
    let declined = browser.text("#add-card-error").await;
    assert!(declined.to_lowercase().contains("declined"), "{declined}");
    browser.screenshot("add-card-declined").await;

    browser.run(&fill("5555555555554444")).await;
    browser
        .wait_until(
            "the new card in the list",
            "return document.getElementById('panel-methods').innerText.includes('4444')",
        )
        .await;
    assert!(browser.text("#add-card-error").await.is_empty());
    let (_, overview) = app
        .get("/v1/customers/portal/overview?externalCustomerId=user_jane")
        .await;
    let lasts: Vec<&str> = overview["portal"]["paymentMethods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["cardLastFour"].as_str())
        .collect();
    assert!(lasts.contains(&"4444"), "{overview}");
    browser.close().await;
}

#[tokio::test]
async fn a_double_click_on_buy_purchases_once() {
    let app = TestApp::spawn().await;
    let customer = customer(&app, false).await;
    let (status, top_up) = app
        .post(
            "/v1/credits/top-ups",
            json!({"featureSlug": "api_calls", "name": "API calls pack", "creditsPerUnit": 500,
                "unitAmountCents": 1000, "currency": "usd", "planIds": [customer.plan_id]}),
        )
        .await;
    assert_eq!(status, 201, "{top_up}");
    let url = session_url(&app).await;
    let browser = Browser::start(1100, 1000).await;
    open(&browser, &url).await;
    select_tab(&browser, "credits").await;
    browser
        .run(
            "const form = document.querySelector('form[data-top-up]');
             form.querySelector('input[name=quantity]').value = '2';
             const buy = form.querySelector('button[type=submit]');
             buy.click(); buy.click();",
        )
        .await;
    browser
        .wait_until(
            "the purchase's credits",
            "return document.getElementById('panel-credits').innerText.includes('1750 of 2000 left')",
        )
        .await;
    let (_, payments) = app
        .get(&format!("/v1/payments?customerId={}", customer.id))
        .await;
    let thousand_charges = payments["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["amountCents"] == 2000 && p["status"] == "succeeded")
        .count();
    assert_eq!(
        thousand_charges, 1,
        "one purchase of 2 × $10.00: {payments}"
    );
    browser.screenshot("credits-purchased").await;
    browser.close().await;
}

#[tokio::test]
async fn the_tabs_follow_the_arrow_keys_home_and_end() {
    let app = TestApp::spawn().await;
    customer(&app, false).await;
    let url = session_url(&app).await;
    let browser = Browser::start(1100, 900).await;
    open(&browser, &url).await;
    let first = browser
        .client
        .find(fantoccini::Locator::Id("tab-methods"))
        .await
        .expect("first tab");
    first.click().await.expect("focus the first tab");

    let press_and_read = |key: fantoccini::key::Key| {
        let client = browser.client.clone();
        async move {
            client
                .active_element()
                .await
                .expect("focused element")
                .send_keys(&key.to_string())
                .await
                .expect("press");
            let state = client
                .execute(
                    "const tab = document.activeElement;
                     const panel = document.getElementById(tab.getAttribute('aria-controls'));
                     return [tab.id, tab.getAttribute('aria-selected'), panel.hidden,
                        document.querySelectorAll('[role=tabpanel]:not([hidden])').length];",
                    vec![],
                )
                .await
                .expect("state");
            state
        }
    };
    use fantoccini::key::Key;
    let expect = |id: &str| json!([id, "true", false, 1]);
    assert_eq!(press_and_read(Key::Right).await, expect("tab-invoices"));
    assert_eq!(press_and_read(Key::Right).await, expect("tab-payments"));
    assert_eq!(press_and_read(Key::End).await, expect("tab-credits"));
    assert_eq!(press_and_read(Key::Right).await, expect("tab-methods"));
    assert_eq!(press_and_read(Key::Left).await, expect("tab-credits"));
    assert_eq!(press_and_read(Key::Home).await, expect("tab-methods"));
    // Tab leaves the tab list for the panel: one stop per tab list, as the pattern says.
    let tab_stops = browser
        .run("return [...document.querySelectorAll('[role=tab]')].map(t => t.tabIndex)")
        .await;
    assert_eq!(tab_stops, json!([0, -1, -1, -1]));
    browser.close().await;
}

#[tokio::test]
async fn an_expired_session_says_so_and_links_back_to_the_merchant() {
    let app = TestApp::spawn().await;
    customer(&app, false).await;
    let url = session_url(&app).await;
    // Long past, whatever the clocks say.
    sqlx::query("UPDATE portal_sessions SET expires_at = '2000-01-01T00:00:00Z'")
        .execute(&app.pool)
        .await
        .unwrap();
    let browser = Browser::start(1100, 800).await;
    open(&browser, &url).await;
    let text = browser.text("main").await;
    assert!(text.contains("expired"), "{text}");
    let back = browser
        .run("return document.querySelector('main a').href")
        .await;
    assert_eq!(back, json!(RETURN_URL));
    browser.screenshot("expired").await;

    // A token nobody made: the same message, and no link to offer.
    open(&browser, &app.url("/portal?session=ps_nobody")).await;
    assert!(browser.text("main").await.contains("expired"));
    assert_eq!(
        browser
            .run("return document.querySelectorAll('main a').length")
            .await,
        json!(0)
    );
    browser.close().await;
}

#[tokio::test]
async fn every_tab_fits_a_phone_without_scrolling_sideways() {
    let app = TestApp::spawn().await;
    customer(&app, true).await;
    let url = session_url(&app).await;
    let browser = Browser::phone(390, 844).await;
    open(&browser, &url).await;
    assert_eq!(browser.run("return window.innerWidth").await, json!(390));
    for tab in TABS {
        select_tab(&browser, tab).await;
        let widths = browser
            .run("return [document.scrollingElement.scrollWidth, window.innerWidth]")
            .await;
        let (scroll, inner) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
        assert!(scroll <= inner, "{tab}: {scroll} px wide in {inner}");
        browser.screenshot(&format!("phone-{tab}")).await;
    }
    browser.close().await;
}

#[tokio::test]
async fn axe_finds_no_serious_or_critical_violation_on_any_tab() {
    let axe = axe_core();
    let app = TestApp::spawn().await;
    customer(&app, true).await;
    let url = session_url(&app).await;
    let browser = Browser::start(1100, 1000).await;
    open(&browser, &url).await;
    browser
        .client
        .execute(&axe, vec![])
        .await
        .expect("load axe-core");
    for tab in TABS {
        select_tab(&browser, tab).await;
        let found = browser
            .client
            .execute_async(
                "const done = arguments[0];
                 axe.run(document, {resultTypes: ['violations']}).then(r => done(
                   r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => ({id: v.id, impact: v.impact, help: v.help,
                                 nodes: v.nodes.map(n => n.html)}))),
                   e => done([{id: 'axe failed', help: String(e)}]));",
                vec![],
            )
            .await
            .expect("run axe");
        assert_eq!(found, Value::Array(vec![]), "{tab}: {found:#}");
    }
    browser.close().await;
}

#[tokio::test]
async fn a_return_url_must_be_an_absolute_web_url() {
    let app = TestApp::spawn().await;
    customer(&app, false).await;
    for bad in [
        "javascript:alert(1)",
        "/account",
        "https://u:p@shop.example.com/",
    ] {
        let response = app
            .post(
                "/v1/customers/portal/sessions",
                json!({"externalCustomerId": "user_jane", "returnUrl": bad}),
            )
            .await;
        assert_eq!(response.0, 400, "{bad}: {}", response.1);
        assert!(response.1["error"]
            .as_str()
            .unwrap()
            .starts_with("returnUrl"));
    }
    let (status, body) = app
        .post(
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": "user_jane"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["session"].get("returnUrl").is_none(), "{body}");
}

/// An open page follows the customer's changes without a reload: usage recorded through the
/// API shows on the credits tab, and a card added on the merchant's side on the methods tab,
/// while a marker set on the page before survives (no navigation happened).
#[tokio::test]
async fn the_open_page_updates_live_without_a_reload() {
    let app = TestApp::spawn().await;
    let jane = customer(&app, false).await;
    let url = session_url(&app).await;
    let browser = Browser::start(1100, 900).await;
    open(&browser, &url).await;
    browser.run("window.__notReloaded = true").await;
    select_tab(&browser, "credits").await;
    let credits = browser.text("#panel-credits").await;
    assert!(credits.contains("750 of 1000 left"), "{credits}");

    let (status, body) = app
        .post(
            "/v1/usage",
            json!({"customerId": jane.id, "featureSlug": "api_calls", "quantity": 100,
                "idempotencyKey": "live-usage"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    browser
        .wait_until(
            "the usage on the open credits tab",
            "return document.getElementById('panel-credits').innerText.includes('650 of 1000 left')",
        )
        .await;

    Billing::new(&app).card(&jane.id, "1881").await;
    select_tab(&browser, "methods").await;
    browser
        .wait_until(
            "the merchant's new card on the open methods tab",
            "return document.getElementById('panel-methods').innerText.includes('1881')",
        )
        .await;
    assert_eq!(
        browser.run("return window.__notReloaded === true").await,
        json!(true),
        "the page was not reloaded"
    );
    browser.close().await;
}
