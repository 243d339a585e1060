//! Who opens the hosted portal page: its `?session=` token is a portal session's, alive, or the
//! page says the link is no good and offers the merchant's return URL, which outlives the session.

use projections::tables::portal_sessions;

use crate::auth::hash_secret;
use crate::context::App;
use crate::error::AppError;
use crate::principal::Principal;

/// What the page may show for a token.
pub enum PageSession {
    /// A live session: the page shows its customer's portal, with the way back.
    Open {
        principal: Principal,
        return_url: Option<String>,
    },
    /// Expired, unknown or not a session token at all; the way back, if the session had one.
    Refused { return_url: Option<String> },
}

impl App {
    /// The portal page's caller. Only a session token opens it: a secret key in a URL would end
    /// up in browser histories and proxy logs, so the page never takes one.
    pub async fn open_portal_page(&self, token: &str) -> Result<PageSession, AppError> {
        if !token.starts_with("ps_") {
            return Ok(PageSession::Refused { return_url: None });
        }
        // The session and its way back in one read: the page's first byte waits for it.
        let (session, return_url) =
            portal_sessions::for_page(&self.pool, &hash_secret(token), self.clock.now()).await?;
        let principal = session.map(Principal::of_session);
        Ok(match principal {
            Some(principal) => PageSession::Open {
                principal,
                return_url,
            },
            None => PageSession::Refused { return_url },
        })
    }
}
