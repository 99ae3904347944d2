//! HTTP handlers, one module per area.

pub mod account;
pub mod admin;
pub mod ads;
pub mod auth;
pub mod billing;
pub mod catalog;
pub mod channels;
pub mod cors;
pub mod earnings;
pub mod feeds;
pub mod fields;
pub mod internal;
pub mod moderation;
pub mod notifications;
pub mod social;
pub mod text;
pub mod transcode;
pub mod tus;
pub mod uploads;
pub mod videos;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::routing::{get, post, put};
use axum::{middleware, Json, Router};
use serde_json::json;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;

/// The API's OpenAPI document (`tests/api/openapi.rs` keeps it and the router in step).
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Largest JSON body any route accepts.
const MAX_JSON_BODY: usize = 16 * 1024;

/// The origin's router: every route, its layers, and the state.
pub fn router(state: AppState) -> Router {
    let internal = Router::new()
        .route("/internal/videos/{id}", get(internal::video_record))
        .route("/internal/media/{id}/{*file}", get(internal::media))
        .route("/internal/entitlements/{user}", get(internal::entitlement))
        .route(
            "/internal/beacons",
            post(crate::analytics::ingest::beacons)
                .layer(DefaultBodyLimit::max(crate::analytics::ingest::MAX_BODY)),
        )
        .route(
            "/internal/beacons/batch",
            post(crate::analytics::ingest::gathered).layer(DefaultBodyLimit::max(
                crate::analytics::ingest::MAX_GATHERED_BODY,
            )),
        )
        .route(
            "/internal/ads/events",
            post(crate::ads::events::ingest)
                .layer(DefaultBodyLimit::max(crate::ads::events::MAX_BODY)),
        )
        .route("/internal/ads/catalog", get(ads::catalog))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            internal::require_edge,
        ))
        // Records, entitlements and members' media: for the edge alone, never for a shared
        // cache between it and the origin.
        .route_layer(SetResponseHeaderLayer::overriding(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        ));
    // Trust boundary: the origin is public (upload URLs, Stripe), but its API is the edge's to
    // call. Rate limits, role checks and token revocation run at the edge, so every `/v1` route
    // (and the key set) answers only requests with the edge's proof; a caller who reaches the
    // origin directly gets 401 and never gets to bypass them.
    let api = Router::new()
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/refresh", post(auth::refresh))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/auth/signup", post(account::signup))
        .route(
            "/v1/me",
            get(auth::me)
                .patch(account::edit_profile)
                .delete(account::delete_account),
        )
        .route("/v1/creator/videos", get(admin::my_videos))
        .route("/v1/creator/stats", get(crate::analytics::stats::creator))
        .route("/v1/feeds/home", get(feeds::home))
        .route("/v1/feeds/channel/{id}", get(feeds::channel))
        .route("/v1/feeds/category/{category}", get(feeds::category))
        .route("/v1/feeds/trending", get(feeds::trending))
        .route("/v1/videos", post(videos::create))
        .route(
            "/v1/videos/{id}",
            get(catalog::video)
                .patch(videos::edit)
                .delete(videos::delete),
        )
        .route("/v1/search", get(catalog::search))
        .route("/v1/categories", get(catalog::categories))
        .route("/v1/users/{id}", get(catalog::profile))
        .route(
            "/v1/videos/{id}/comments",
            get(social::list_comments).post(social::add_comment),
        )
        .route("/v1/videos/{id}/reaction", put(social::react_video))
        .route(
            "/v1/comments/{id}",
            axum::routing::patch(social::edit_comment).delete(social::delete_comment),
        )
        .route("/v1/comments/{id}/reaction", put(social::react_comment))
        .route("/v1/channels", post(channels::create))
        .route(
            "/v1/channels/{id}",
            get(channels::get)
                .patch(channels::edit)
                .delete(channels::delete),
        )
        .route("/v1/users/{id}/channels", get(channels::of_user))
        .route(
            "/v1/channels/{id}/subscription",
            put(social::subscribe).delete(social::unsubscribe),
        )
        .route("/v1/me/subscriptions", get(social::my_subscriptions))
        .route("/v1/me/notifications", get(notifications::list))
        .route("/v1/me/notifications/read", post(notifications::mark_read))
        .route(
            "/v1/me/notification-preferences",
            get(notifications::preferences).put(notifications::set_preferences),
        )
        .route(
            "/v1/me/email/confirm",
            post(notifications::request_confirmation),
        )
        .route(
            "/v1/auth/confirm-email",
            get(notifications::confirm_page).post(notifications::confirm),
        )
        .route(
            "/v1/notifications/unsubscribe",
            get(notifications::unsubscribe_page).post(notifications::unsubscribe),
        )
        .route("/v1/admin/users", get(admin::find_users))
        .route("/v1/admin/stats", get(crate::analytics::stats::platform))
        .route("/v1/creator/earnings", get(earnings::months))
        .route("/v1/creator/earnings/{month}", get(earnings::statement))
        .route(
            "/v1/creator/earnings/{month}/csv",
            get(earnings::statement_csv),
        )
        .route("/v1/admin/earnings/{month}", get(earnings::month_report))
        .route("/v1/admin/earnings/{month}/close", post(earnings::close))
        .route("/v1/ads/campaigns", get(ads::list).post(ads::create))
        .route("/v1/ads/campaigns/{id}", get(ads::get).patch(ads::edit))
        .route("/v1/admin/users/{id}/role", post(admin::set_role))
        .route("/v1/admin/users/{id}/revoke", post(admin::revoke))
        .route("/.well-known/jwks.json", get(auth::jwks))
        .route("/v1/billing/checkout", post(billing::start_checkout))
        .route("/v1/videos/{id}/upload", post(uploads::issue))
        .route("/v1/videos/{id}/transcode", get(transcode::status))
        .route("/v1/reports", post(moderation::report))
        .route("/v1/moderation/queue", get(moderation::queue))
        .route("/v1/moderation/actions", post(moderation::act))
        .route("/v1/moderation/log", get(moderation::log))
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::edit)
                .delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/rotate", post(webhooks::rotate))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/v1/webhooks/{id}/deliveries/{event}/retry",
            post(webhooks::send_again),
        )
        .route_layer(middleware::from_fn(text::refuse_control_in_target))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            internal::require_edge,
        ));
    // The upload URLs (their tickets are their credentials), which the web app's pages on the
    // allowed origins reach from the browser (CORS). tus's own `OPTIONS /uploads/tus` stays
    // outside: it describes the server to any client.
    let web = cors::WebOrigins::new(&state.settings.web.origins().expect("validated at start"))
        .expect("validated origins are header values");
    let uploads = Router::new()
        .route("/uploads/{ticket}", put(uploads::put))
        .route("/uploads/{ticket}/tus", post(tus::create))
        .route(
            "/uploads/tus/{id}",
            axum::routing::head(tus::head)
                .patch(tus::patch)
                .delete(tus::delete),
        )
        .layer(middleware::from_fn_with_state(web, cors::uploads));
    // Public: health, the API document, the upload URLs and Stripe's webhook (its signature is
    // its credential).
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/openapi.json",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    OPENAPI,
                )
            }),
        )
        .route("/uploads/tus", axum::routing::options(tus::options))
        .route(
            "/billing/stripe/webhook",
            post(billing::stripe_webhook).layer(DefaultBodyLimit::max(billing::MAX_WEBHOOK_BODY)),
        )
        .merge(uploads)
        .merge(api)
        .merge(internal)
        .route_layer(middleware::from_fn(crate::telemetry::note_route))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::HeaderName::from_static("x-origin-region"),
            HeaderValue::from_str(&state.settings.server.region).expect("region is validated"),
        ))
        // Outermost: every request has its id, log line and count, whatever answers it.
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::telemetry::observe,
        ))
        .with_state(state)
}
