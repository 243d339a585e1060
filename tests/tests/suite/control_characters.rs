//! No input is a 5xx: a control character in any string a route takes — a path parameter, a
//! query parameter, a JSON body field, a string nested in a JSON field — is answered with a 4xx
//! JSON error, never a 500. The routes, their parameters and their body fields are read from
//! the OpenAPI document, so a route is covered as soon as it is described.

use billstream_tests::{send_raw, TestApp};
use reqwest::Method;
use serde_json::{json, Map, Value};

const CONTROLS: [char; 8] = [
    '\u{0}', '\u{1}', '\n', '\t', '\r', '\u{1b}', '\u{1f}', '\u{7f}',
];

/// The `n`th tainted string: a control character alone, inside text, or inside an id.
fn tainted(n: usize) -> String {
    let c = CONTROLS[n % CONTROLS.len()];
    match (n / CONTROLS.len()) % 3 {
        0 => c.to_string(),
        1 => format!("a{c}b@example.com"),
        _ => format!("cust_{c}1"),
    }
}

/// `text` percent-encoded for a URL's path or query.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The body schema's property names of an operation, following a `$ref` into the components.
fn body_fields(document: &Value, operation: &Value) -> Vec<String> {
    let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    let schema = match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or_default();
            &document["components"]["schemas"][name]
        }
        None => schema,
    };
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn parameters(operation: &Value, place: &str) -> Vec<String> {
    operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == place)
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

/// One request of the fuzz: what was sent, for the failure message.
struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
}

#[tokio::test]
async fn control_characters_anywhere_in_any_route_are_a_4xx_json_error() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"email": "fuzz@example.com", "externalCustomerId": "ext_fuzz"}))
        .await;
    let document = send_raw(app.client.get(app.url("/openapi.json")))
        .await
        .json();
    let mut cases = Vec::new();
    let mut n = 0;
    for (template, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let method: Method = method.to_uppercase().parse().expect("method");
            let path_params = parameters(operation, "path");
            let query_params = parameters(operation, "query");
            let fields = body_fields(&document, operation);
            let path_with = |tainted_param: Option<&str>, value: &str| {
                let mut path = template.clone();
                for param in &path_params {
                    let replacement = if Some(param.as_str()) == tainted_param {
                        encoded(value)
                    } else {
                        "cust_0192f1c2a7b47c8e9a1d2b3c4d5e6f70".to_owned()
                    };
                    path = path.replace(&format!("{{{param}}}"), &replacement);
                }
                path
            };
            let plain_body = || (method == Method::POST).then(|| json!({}));
            for param in &path_params {
                for _ in 0..3 {
                    n += 1;
                    cases.push(Case {
                        method: method.clone(),
                        path: path_with(Some(param), &tainted(n)),
                        body: plain_body(),
                    });
                }
            }
            for param in &query_params {
                for _ in 0..3 {
                    n += 1;
                    cases.push(Case {
                        method: method.clone(),
                        path: format!("{}?{param}={}", path_with(None, ""), encoded(&tainted(n))),
                        body: plain_body(),
                    });
                }
            }
            for field in &fields {
                for nested in [false, true] {
                    n += 1;
                    let value = if nested {
                        json!({"components": [{"type": "flat", "name": tainted(n)}], "x": [tainted(n + 1)]})
                    } else {
                        Value::String(tainted(n))
                    };
                    let mut body = Map::new();
                    body.insert(field.clone(), value);
                    cases.push(Case {
                        method: method.clone(),
                        path: path_with(None, ""),
                        body: Some(Value::Object(body)),
                    });
                }
            }
        }
    }
    // Bodies valid but for one tainted string, so that the string gets past the other checks
    // to where it would be stored.
    let customer = app
        .create_customer(json!({"email": "primary@example.com"}))
        .await;
    let customer_id = customer["id"].as_str().unwrap();
    for k in 0..CONTROLS.len() {
        let bad = tainted(k);
        let pricing = json!({"components": [{"type": "flat", "amountCents": 100, "label": bad}]});
        for body in [
            json!({"name": bad, "currency": "USD", "pricingData": {"components": []}}),
            json!({"name": "Pro", "description": bad, "currency": "USD", "pricingData": {"components": []}}),
            json!({"name": "Pro", "currency": "USD", "pricingData": pricing}),
        ] {
            cases.push(Case {
                method: Method::POST,
                path: "/v1/plans".into(),
                body: Some(body),
            });
        }
        cases.push(Case {
            method: Method::POST,
            path: "/v1/organizations".into(),
            body: Some(json!({"name": bad, "primaryCustomerId": customer_id})),
        });
        cases.push(Case {
            method: Method::POST,
            path: "/v1/customers/portal/sessions".into(),
            body: Some(json!({"externalCustomerId": bad})),
        });
    }
    assert!(
        cases.len() > 100,
        "the fuzz covers the routes: {} cases",
        cases.len()
    );

    let mut wrong = Vec::new();
    for case in &cases {
        let mut request = app.request(case.method.clone(), &case.path);
        if let Some(body) = &case.body {
            request = request.json(body);
        }
        let response = send_raw(request).await;
        let is_json_error = response.json()["error"].is_string();
        if response.status >= 500 || (response.status >= 400 && !is_json_error) {
            wrong.push(format!(
                "{} {} {}: {} {}",
                case.method,
                case.path,
                case.body.as_ref().map(Value::to_string).unwrap_or_default(),
                response.status,
                response.text
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases were not a 4xx JSON error:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
