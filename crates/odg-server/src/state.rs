//! What every handler shares.

use odg_components::ComponentService;

use crate::auth::{AuthConfig, Authenticator};

#[derive(Debug, Clone)]
pub struct AppState {
    pub components: ComponentService,
    pub auth: Authenticator,
}

impl AppState {
    /// A state whose state-changing routes refuse everyone until [`AppState::with_auth`] configures credentials.
    pub fn new(components: ComponentService) -> Self {
        AppState {
            components,
            auth: Authenticator::new(&AuthConfig::default())
                .expect("the empty auth configuration is valid"),
        }
    }

    pub fn with_auth(mut self, auth: Authenticator) -> Self {
        self.auth = auth;
        self
    }
}
