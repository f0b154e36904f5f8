//! Nextcloud as the harness sees it: how `user_oidc` names users ([`UidMapping`]), and the
//! strict stand-in the native backend runs in place of a real Nextcloud (see DESIGN.md,
//! "The Nextcloud stand-in").

mod standin;
mod user_oidc;

pub use standin::{
    AuthKind, Leniency, RecordedRequest, RequestLog, STAND_IN_PRODUCT, StandIn, StandInConfig,
};
pub use user_oidc::UidMapping;
