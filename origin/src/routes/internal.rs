//! Routes only the edge may call: video and entitlement records, and media files.
//! Every request must carry a valid `x-edge-auth` proof (see `shared_wasm::edge_auth`).

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use shared_wasm::media::MediaFile;
use shared_wasm::{edge_auth, range, UnixTime, VideoId};

use crate::clock::now;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::media_prefix;
use crate::{entitlements, videos};

/// Refuses any request without a valid edge proof for its method and path (these routes and
/// the whole `/v1` API).
pub async fn require_edge(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let proof = req
        .headers()
        .get(edge_auth::HEADER)
        .and_then(|v| v.to_str().ok());
    edge_auth::verify(
        state.settings.edge.shared_secret.expose_secret().as_bytes(),
        proof,
        req.method().as_str(),
        path,
        UnixTime(now()),
    )
    .map_err(|e| {
        // The route's template, not `path`: its query is no business of the log.
        let route = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or("?", |m| m.as_str());
        tracing::warn!(reason = %e, route, "refused a request without the edge's proof");
        ApiError::unauthorized(
            "edge_credentials_required",
            "this endpoint answers the edge only",
        )
    })?;
    Ok(next.run(req).await)
}

fn video_id(raw: &str) -> Result<VideoId, ApiError> {
    VideoId::parse(raw).map_err(|e| ApiError::BadRequest {
        code: "invalid_video_id",
        message: format!("video id {e}"),
    })
}

/// `GET /internal/videos/{id}`: the video's KV record, CBOR.
pub async fn video_record(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = video_id(&id)?;
    let rec = videos::record(&state.db, &id)
        .await?
        .ok_or(ApiError::NotFound("video"))?;
    Ok(([(header::CONTENT_TYPE, "application/cbor")], rec.to_cbor()).into_response())
}

/// `GET /internal/media/{id}/{*file}`: one media file, streamed from the store; one byte range
/// of it for a `Range` header (206, or 416 when the range misses the file).
pub async fn media(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = video_id(&id)?;
    let file = MediaFile::parse(&file).map_err(|e| ApiError::BadRequest {
        code: "bad_media_path",
        message: e.to_string(),
    })?;
    // Both parts are validated (no separators beyond `/`, no dot segments), so the key stays
    // inside the video's media.
    let key = format!("{}/{}", media_prefix(&id), file.as_str());
    // The origin sends no validators (ETag, Last-Modified), so no `If-Range` can be known to
    // match: with one, the whole file is the answer (RFC 9110 §13.1.5).
    let range = headers
        .get(header::RANGE)
        .filter(|_| !headers.contains_key(header::IF_RANGE))
        .and_then(|v| v.to_str().ok())
        .and_then(range::parse);
    if let Some(range) = range {
        return ranged(&state, &key, &file, range).await;
    }
    let obj = state
        .store
        .get(&key)
        .await
        .map_err(ApiError::Internal)?
        .ok_or(ApiError::NotFound("media file"))?;
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, file.content_type().to_owned())],
        Body::from_stream(obj.body),
    )
        .into_response();
    let h = resp.headers_mut();
    if let Some(len) = obj.len {
        h.insert(header::CONTENT_LENGTH, len.into());
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(resp)
}

async fn ranged(
    state: &AppState,
    key: &str,
    file: &MediaFile,
    range: range::Spec,
) -> Result<Response, ApiError> {
    let got = state
        .store
        .get_range(key, range)
        .await
        .map_err(ApiError::Internal)?
        .ok_or(ApiError::NotFound("media file"))?;
    let Some(((first, last), body)) = got.part else {
        return Ok((
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, range::unsatisfied(got.total))],
        )
            .into_response());
    };
    let mut resp = (
        StatusCode::PARTIAL_CONTENT,
        [
            (header::CONTENT_TYPE, file.content_type().to_owned()),
            (
                header::CONTENT_RANGE,
                range::content_range(first, last, got.total),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, (last - first + 1).into());
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(resp)
}

/// `GET /internal/entitlements/{user}`: the user's entitlement record, CBOR; 404 when none.
/// The edge reads through on a KV miss; the outbox pushes every change.
pub async fn entitlement(
    State(state): State<AppState>,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let rec = entitlements::record(&state.db, &user)
        .await?
        .ok_or(ApiError::NotFound("entitlement"))?;
    Ok(([(header::CONTENT_TYPE, "application/cbor")], rec.to_cbor()).into_response())
}
