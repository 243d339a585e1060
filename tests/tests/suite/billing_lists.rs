//! The billing lists page as every list of the service does: `limit` 1 to 1000 with
//! `startingAfter`, newest first, and without `limit` the whole list; the portal's invoices
//! carry their latest payment's status, and a secret key pages them by `externalCustomerId`.

use billstream_tests::billing::Billing;
use billstream_tests::{assert_error, TestApp};
use serde_json::{json, Value};

/// An issued invoice of `customer` for `cents`.
async fn issued(app: &TestApp, customer: &str, cents: i64) -> String {
    let (status, body) = app
        .post(
            "/v1/invoices",
            json!({"customerId": customer, "currency": "USD", "lines": [
                {"description": "Support", "unitAmountCents": cents},
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["invoice"]["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post(&format!("/v1/invoices/{id}/finalize"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    id
}

fn ids(body: &Value, list: &str) -> Vec<String> {
    body[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {body}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn invoices_page_by_limit_and_cursor_and_come_whole_without_a_limit() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "pages@example.com"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut made = Vec::new();
    for n in 0..12 {
        made.push(issued(&app, &customer, 100 + n).await);
    }
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();

    // More than the ten a page once held, all of them, newest first.
    let (status, whole) = app.get("/v1/invoices").await;
    assert_eq!(status, 200, "{whole}");
    assert_eq!(ids(&whole, "invoices"), newest_first);
    assert_eq!(whole["hasMore"], false);

    let mut paged = Vec::new();
    let mut query = "?limit=5".to_owned();
    loop {
        let (status, page) = app.get(&format!("/v1/invoices{query}")).await;
        assert_eq!(status, 200, "{page}");
        let page_ids = ids(&page, "invoices");
        assert!(page_ids.len() <= 5);
        paged.extend(page_ids.clone());
        if page["hasMore"] == false {
            break;
        }
        query = format!("?limit=5&startingAfter={}", page_ids.last().unwrap());
    }
    assert_eq!(paged, newest_first);

    for bad in ["?limit=0", "?limit=1001", "?limit=ten"] {
        let (status, body) = app.get(&format!("/v1/invoices{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = app.get("/v1/invoices?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body, "invoices").len(), 12);
    let (status, body) = app.get("/v1/invoices?startingAfter=cust_1").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.get("/v1/payments?startingAfter=inv_1").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn the_portal_pages_invoices_and_payments_newest_first_with_their_payment_status() {
    let app = TestApp::spawn().await;
    let billing = Billing::new(&app);
    let customer = app
        .create_customer(json!({"email": "zoe@example.com", "externalCustomerId": "user_zoe"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    billing.card(&customer, "0341").await;
    let mut invoices = Vec::new();
    for n in 0..3 {
        let id = issued(&app, &customer, 500 + n).await;
        let declined = app.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
        assert_error(&declined, 402, "Your card was declined.");
        invoices.push(id);
    }
    // One more, never charged: no payment status.
    invoices.push(issued(&app, &customer, 900).await);
    invoices.reverse();

    let (status, listed) = app
        .get("/v1/customers/portal/invoices?externalCustomerId=user_zoe")
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(ids(&listed, "invoices"), invoices);
    assert_eq!(listed["invoices"][0]["paymentStatus"], Value::Null);
    assert_eq!(listed["invoices"][1]["paymentStatus"], "failed");

    let (status, first) = app
        .get("/v1/customers/portal/payments?externalCustomerId=user_zoe&limit=2")
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["hasMore"], true);
    let first_ids = ids(&first, "payments");
    assert_eq!(first_ids.len(), 2);
    let (status, rest) = app
        .get(&format!(
            "/v1/customers/portal/payments?externalCustomerId=user_zoe&limit=2&startingAfter={}",
            first_ids[1]
        ))
        .await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["hasMore"], false);
    let rest_ids = ids(&rest, "payments");
    assert_eq!(rest_ids.len(), 1);
    // Newest first: the payments are of the invoices in the order they were paid.
    let paid_order: Vec<Value> = first["payments"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["payments"].as_array().unwrap())
        .map(|payment| payment["invoiceId"].clone())
        .collect();
    assert_eq!(
        paid_order,
        invoices[1..].iter().map(|id| json!(id)).collect::<Vec<_>>()
    );

    let (status, body) = app.get("/v1/customers/portal/payments").await;
    assert_eq!(status, 400, "a secret key names the customer: {body}");
    let (status, body) = app
        .get("/v1/customers/portal/invoices?externalCustomerId=user_zoe&startingAfter=pay_1")
        .await;
    assert_eq!(status, 400, "{body}");
}
