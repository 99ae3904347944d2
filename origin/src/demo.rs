//! The demo content for a local stack: a creator account with a membership, a viewer and an
//! admin account, and four videos (public, members, one country, taken down) whose HLS ladder
//! ffmpeg renders from a generated test pattern. Nothing is committed: the media is made on the
//! machine that runs it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use shared_wasm::jwt::Role;
use shared_wasm::playback::{BindingPolicy, IpBinding};
use shared_wasm::record::{CountryMode, CountryRule, EntitlementStatus, VideoState, Visibility};
use shared_wasm::{CountryCode, VideoId};
use tokio::process::Command;

use crate::clock::now;
use crate::entitlements;
use crate::state::AppState;
use crate::storage::Store;
use crate::users;
use crate::videos::{self, NewVideo};

/// A demo video and the rules it shows off.
struct Demo {
    id: &'static str,
    title: &'static str,
    visibility: Visibility,
    /// Countries it is limited to (an allow-list), if any.
    only_in: Option<&'static str>,
    taken_down: bool,
    /// Its own token binding, if it overrides the deployment's.
    binding: Option<BindingPolicy>,
}

const DEMOS: [Demo; 5] = [
    Demo {
        id: "demo-free",
        title: "Test pattern (public)",
        visibility: Visibility::Public,
        only_in: None,
        taken_down: false,
        binding: None,
    },
    Demo {
        id: "demo-members",
        title: "Test pattern (members only)",
        visibility: Visibility::Members,
        only_in: None,
        taken_down: false,
        binding: None,
    },
    Demo {
        id: "demo-geo",
        title: "Test pattern (France only)",
        visibility: Visibility::Public,
        only_in: Some("FR"),
        taken_down: false,
        binding: None,
    },
    Demo {
        id: "demo-taken",
        title: "Test pattern (taken down)",
        visibility: Visibility::Public,
        only_in: None,
        taken_down: true,
        binding: None,
    },
    Demo {
        id: "demo-embed",
        title: "Test pattern (embeddable: tokens never bound)",
        visibility: Visibility::Public,
        only_in: None,
        taken_down: false,
        binding: Some(BindingPolicy {
            ip: IpBinding::Off,
            country: false,
        }),
    },
];
const DURATION_SECS: u32 = 8;

/// The ffmpeg arguments for a two-rendition H.264/AAC HLS ladder (480p, 240p) with a master
/// playlist carrying BANDWIDTH, RESOLUTION and CODECS, written into the current directory.
fn ladder_args() -> Vec<String> {
    let d = DURATION_SECS;
    [
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=854x480:rate=25:duration={d}"),
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=440:sample_rate=48000:duration={d}"),
        "-filter_complex",
        "[0:v]split=2[a][b];[a]scale=854:480[v480];[b]scale=426:240[v240]",
        "-map",
        "[v480]",
        "-map",
        "[v240]",
        "-map",
        "1:a",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "main",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "50",
        "-keyint_min",
        "50",
        "-sc_threshold",
        "0",
        "-b:v:0",
        "1000k",
        "-maxrate:v:0",
        "1100k",
        "-bufsize:v:0",
        "2000k",
        "-b:v:1",
        "300k",
        "-maxrate:v:1",
        "330k",
        "-bufsize:v:1",
        "600k",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-ac",
        "2",
        "-f",
        "hls",
        "-hls_time",
        "2",
        "-hls_playlist_type",
        "vod",
        "-hls_segment_filename",
        "%v/seg_%03d.ts",
        "-master_pl_name",
        "master.m3u8",
        "-var_stream_map",
        "v:0,a:0,name:480p v:1,a:1,name:240p",
        "%v/index.m3u8",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Renders the ladder into `dest` unless it is already there. Work happens in a sibling temp
/// folder that is renamed into place, so a crash never leaves a half-written video visible.
pub async fn render_ladder(dest: &Path) -> anyhow::Result<()> {
    if dest.join("master.m3u8").is_file() {
        return Ok(());
    }
    let parent = dest.parent().context("media path has no parent")?;
    let tmp: PathBuf = parent.join(format!(
        ".tmp-{}-{}",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("video"),
        std::process::id()
    ));
    let _ = tokio::fs::remove_dir_all(&tmp).await;
    for r in ["480p", "240p"] {
        tokio::fs::create_dir_all(tmp.join(r)).await?;
    }
    // The ladder, then a poster like a transcode's (`poster.jpg`, 360 lines high).
    let poster = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=1:duration=1",
        "-frames:v",
        "1",
        "poster.jpg",
    ]
    .map(String::from);
    for args in [ladder_args(), poster.to_vec()] {
        if let Err(e) = ffmpeg(&tmp, &args).await {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            return Err(e);
        }
    }
    if !tmp.join("master.m3u8").is_file() {
        bail!("ffmpeg wrote no master playlist");
    }
    let _ = tokio::fs::remove_dir_all(dest).await;
    tokio::fs::rename(&tmp, dest).await?;
    Ok(())
}

/// Runs ffmpeg with `args` in `dir`.
async fn ffmpeg(dir: &Path, args: &[String]) -> anyhow::Result<()> {
    let out = Command::new("ffmpeg")
        // Quiet, never reading stdin, overwriting: the same for every run of the demo.
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .context("running ffmpeg (install it with: apt-get install ffmpeg)")?;
    if !out.status.success() {
        bail!(
            "ffmpeg failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Copies a rendered ladder unless `dest` already has one, through a temp folder and a rename
/// like [`render_ladder`].
async fn copy_ladder(src: &Path, dest: &Path) -> anyhow::Result<()> {
    if dest.join("master.m3u8").is_file() {
        return Ok(());
    }
    let tmp = dest.with_extension(format!("tmp-{}", std::process::id()));
    let _ = tokio::fs::remove_dir_all(&tmp).await;
    let mut dirs = vec![(src.to_path_buf(), tmp.clone())];
    while let Some((from, to)) = dirs.pop() {
        tokio::fs::create_dir_all(&to).await?;
        let mut entries = tokio::fs::read_dir(&from).await?;
        while let Some(e) = entries.next_entry().await? {
            let target = to.join(e.file_name());
            if e.file_type().await?.is_dir() {
                dirs.push((e.path(), target));
            } else {
                tokio::fs::copy(e.path(), target).await?;
            }
        }
    }
    tokio::fs::rename(&tmp, dest).await?;
    Ok(())
}

/// Puts a rendered ladder into the store: each rendition folder, then the rest, then the
/// master playlist, so a crash part way leaves a demo that the next run redoes.
async fn publish(store: &dyn Store, prefix: &str, ladder: &Path) -> anyhow::Result<()> {
    let mut entries = tokio::fs::read_dir(ladder).await?;
    let mut files = Vec::new();
    while let Some(e) = entries.next_entry().await? {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().await?.is_dir() {
            store
                .put_dir(&format!("{prefix}/{name}"), &e.path(), "index.m3u8")
                .await?;
        } else if name != "master.m3u8" {
            files.push((name, e.path()));
        }
    }
    files.push(("master.m3u8".into(), ladder.join("master.m3u8")));
    for (name, path) in files {
        store.put_file(&format!("{prefix}/{name}"), &path).await?;
    }
    let _ = tokio::fs::remove_dir_all(ladder).await;
    Ok(())
}

/// The other demo accounts (same password as the main one): a viewer without a membership, a
/// moderator and an admin.
pub const VIEWER_EMAIL: &str = "viewer@example.com";
/// See [`VIEWER_EMAIL`].
pub const MODERATOR_EMAIL: &str = "moderator@example.com";
/// See [`VIEWER_EMAIL`].
pub const ADMIN_EMAIL: &str = "admin@example.com";

/// Creates the demo accounts and videos (idempotent). The main account is a creator with a
/// year of membership; its entitlement is renewed at every run.
pub async fn seed(state: &AppState, email: &str, password: &str) -> anyhow::Result<()> {
    let region = &state.settings.server.region;
    let user = users::ensure_user(&state.db, email, password, Role::Creator, region).await?;
    users::ensure_user(&state.db, VIEWER_EMAIL, password, Role::User, region).await?;
    users::ensure_user(
        &state.db,
        MODERATOR_EMAIL,
        password,
        Role::Moderator,
        region,
    )
    .await?;
    users::ensure_user(&state.db, ADMIN_EMAIL, password, Role::Admin, region).await?;
    entitlements::set(
        &state.db,
        &user.id,
        "demo",
        EntitlementStatus::Active,
        now() + 365 * 24 * 3600,
    )
    .await?;
    // ffmpeg renders the ladder once, in scratch space; each demo gets a copy in the store.
    let scratch = state.settings.storage.scratch_dir();
    let rendered = scratch.join("demo-ladder");
    for demo in DEMOS {
        let vid = VideoId::parse(demo.id).expect("demo ids are valid");
        let prefix = crate::storage::media_prefix(&vid);
        let master = format!("{prefix}/master.m3u8");
        if state.store.get(&master).await?.is_none() {
            render_ladder(&rendered).await?;
            let copy = scratch.join(format!("demo-{}", demo.id));
            copy_ladder(&rendered, &copy).await?;
            publish(state.store.as_ref(), &prefix, &copy).await?;
        }
        videos::upsert(
            &state.db,
            NewVideo {
                id: &vid,
                owner_id: Some(&user.id),
                channel_id: None,
                title: demo.title,
                description: "",
                visibility: demo.visibility,
                state: VideoState::Ready,
                duration_ms: Some(u64::from(DURATION_SECS) * 1000),
                countries: demo.only_in.map(|c| CountryRule {
                    mode: CountryMode::Allow,
                    list: vec![CountryCode::parse(c).expect("demo countries are valid")],
                }),
                taken_down: demo.taken_down,
                binding: demo.binding,
                category: None,
                tags: "",
            },
        )
        .await?;
    }
    Ok(())
}
