//! What every handler shares.

use odg_components::ComponentService;

#[derive(Debug, Clone)]
pub struct AppState {
    pub components: ComponentService,
}

impl AppState {
    pub fn new(components: ComponentService) -> Self {
        AppState { components }
    }
}
