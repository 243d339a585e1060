//! A real browser for the portal page's tests: Debian's `chromium`, headless, driven over
//! WebDriver by `chromedriver` (`.ci/run` installs both), which each test starts on a free port
//! of its own and stops when it is done.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session and the chromedriver that runs it.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Browser {
    /// A desktop browser whose window is `width` × `height` CSS pixels, speaking `en-US`.
    pub async fn start(width: u32, height: u32) -> Browser {
        Self::launch(width, height, false).await
    }

    /// A phone's viewport, `width` × `height`: Chromium's emulation, since a headless window
    /// is never narrower than 500 px.
    pub async fn phone(width: u32, height: u32) -> Browser {
        Self::launch(width, height, true).await
    }

    async fn launch(width: u32, height: u32, phone: bool) -> Browser {
        crate::test_deps::ensure(|| {
            [CHROMIUM, CHROMEDRIVER]
                .iter()
                .all(|program| std::path::Path::new(program).exists())
        });
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(program).exists(),
                "{program} is missing: apt-get install -y chromium chromium-driver (.ci/test-deps does)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut browser_guard = DriverGuard(Some(driver));
        let mut options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--lang=en-US",
                format!("--window-size={},{}", width.max(500), height),
            ],
        });
        if phone {
            options["mobileEmulation"] = json!({
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2, "mobile": true},
            });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let attempt = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await;
            match attempt {
                Ok(client) => break client,
                Err(e) if started.elapsed() > Duration::from_secs(20) => {
                    panic!("chromedriver did not start a session: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser {
            client,
            driver: browser_guard.0.take().expect("driver"),
        }
    }

    /// Runs `script` (a function body; `arguments` as WebDriver passes them) in the page.
    pub async fn run(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect(script)
    }

    /// Waits until `script` returns true, or fails with `what` after ten seconds.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let started = Instant::now();
        loop {
            if self.run(script).await == Value::Bool(true) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the element `selector` finds.
    pub async fn text(&self, selector: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.innerText : null;",
            json!(selector)
        );
        match self.run(&script).await {
            Value::String(text) => text,
            other => panic!("no element {selector}: {other}"),
        }
    }

    /// Writes a PNG of the viewport to `target/portal-screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let folder = workspace_target().join("portal-screenshots");
        std::fs::create_dir_all(&folder).expect("screenshot folder");
        std::fs::write(folder.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Kills chromedriver if starting the session panics before a `Browser` owns it.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panics leaves no chromedriver (nor its chromium) behind.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The workspace's `target/` (or `CARGO_TARGET_DIR`), where screenshots and axe-core live.
pub fn workspace_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// axe-core's script, which `.ci/run` fetches from the npm registry into `target/axe`. Missing,
/// the accessibility test fails: it must not pass by not looking.
pub fn axe_core() -> String {
    let path = workspace_target().join("axe/node_modules/axe-core/axe.min.js");
    crate::test_deps::ensure(|| path.exists());
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing at {}: {e}; run `npm install --prefix target/axe axe-core@4.14.1` \
             (.ci/test-deps does)",
            path.display()
        )
    })
}
