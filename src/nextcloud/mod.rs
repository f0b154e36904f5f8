//! Nextcloud as the harness sees it: for now, the strict stand-in the native backend
//! runs in place of a real Nextcloud (see DESIGN.md, "The Nextcloud stand-in").

mod standin;

pub use standin::{AuthKind, RecordedRequest, StandIn, StandInConfig, user_id_for_sub};
