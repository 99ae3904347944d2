//! ffprobe and ffmpeg: what a source holds, the ladder it gets, one rendition encoded with its
//! progress reported, the poster, and the master playlist.

use std::path::Path;
use std::process::Stdio;

use anyhow::{anyhow, Context};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::reason::{Because, Reason};
use crate::container::Container;

/// A source file and the container its bytes were found to be: every run that reads it opens
/// it as that container and nothing else ([`Container::input_args`]).
#[derive(Debug, Clone)]
pub struct Source {
    /// The local file.
    pub path: std::path::PathBuf,
    /// What it is.
    pub container: Container,
}

impl Source {
    fn input_args(&self) -> Vec<std::ffi::OsString> {
        self.container.input_args(&self.path)
    }
}

/// What ffprobe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Display width.
    pub width: u32,
    /// Display height.
    pub height: u32,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Whether there is an audio stream.
    pub has_audio: bool,
}

/// Reads the source. Errors are [`Failed`](super::reason::Failed) with the file's fault as
/// their reason (ffprobe's words are in the error, for the log), or plain when ffprobe did not
/// run.
pub async fn probe(ffprobe: &str, source: &Source) -> anyhow::Result<Probe> {
    let mut cmd = Command::new(ffprobe);
    cmd.args([
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_streams",
        "-show_format",
    ])
    .args(source.input_args())
    .stdin(Stdio::null());
    log_command(&cmd);
    let out = cmd.output().await.context("running ffprobe")?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(anyhow!(
            "ffprobe cannot read the file: {}",
            why.trim().chars().take(300).collect::<String>()
        ))
        .because(Reason::UnreadableMedia);
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("ffprobe's output")?;
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video" && s["disposition"]["attached_pic"] != 1)
        .context("the file has no video stream")
        .because(Reason::NoVideoStream)?;
    let (width, height) = (
        video["width"].as_u64().unwrap_or(0) as u32,
        video["height"].as_u64().unwrap_or(0) as u32,
    );
    if width < 16 || height < 16 {
        return Err(anyhow!(
            "the video stream has no usable size ({width}x{height})"
        ))
        .because(Reason::BadDimensions);
    }
    let seconds: f64 = v["format"]["duration"]
        .as_str()
        .or(video["duration"].as_str())
        .and_then(|d| d.parse().ok())
        .context("the file has no duration")
        .because(Reason::BadDimensions)?;
    Ok(Probe {
        width,
        height,
        duration_ms: (seconds * 1000.0) as u64,
        has_audio: streams.iter().any(|s| s["codec_type"] == "audio"),
    })
}

/// One rung of the ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// Folder and variant name, `720p`.
    pub name: String,
    /// Output height.
    pub height: u32,
}

const RUNGS: [(u32, u32); 5] = [
    (240, 400),
    (360, 800),
    (480, 1400),
    (720, 2800),
    (1080, 5000),
];

/// The rungs no higher than the source (a source below 240 lines gets one at its own height).
pub fn ladder(p: &Probe) -> Vec<Rendition> {
    let mut rungs: Vec<Rendition> = RUNGS
        .iter()
        .filter(|(h, _)| *h <= p.height)
        .map(|(h, _)| Rendition {
            name: format!("{h}p"),
            height: *h,
        })
        .collect();
    if rungs.is_empty() {
        let h = p.height & !1;
        rungs.push(Rendition {
            name: format!("{h}p"),
            height: h,
        });
    }
    rungs
}

fn kbps(height: u32) -> u32 {
    RUNGS
        .iter()
        .find(|(h, _)| *h >= height)
        .map_or(5000, |(_, k)| *k)
}

/// The H.264 level for a height (main profile), as ffmpeg takes it and as CODECS spells it.
fn level(height: u32) -> (&'static str, &'static str) {
    match height {
        0..=480 => ("3.0", "4d401e"),
        481..=720 => ("3.1", "4d401f"),
        _ => ("4.0", "4d4028"),
    }
}

/// Output width for `height`, keeping the source's shape, even.
pub fn width_for(p: &Probe, height: u32) -> u32 {
    let w = (u64::from(p.width) * u64::from(height) / u64::from(p.height)) as u32;
    (w + 1) & !1
}

/// Encodes one rendition into `dir` (`index.m3u8` and `seg_NNN.ts`), calling `progress` with
/// the percent done as ffmpeg reports it. The child is killed if this future is dropped.
pub async fn encode(
    ffmpeg: &str,
    source: &Source,
    dir: &Path,
    p: &Probe,
    r: &Rendition,
    mut progress: impl FnMut(u8),
) -> anyhow::Result<()> {
    let k = kbps(r.height);
    let (lvl, _) = level(r.height);
    let mut cmd = Command::new(ffmpeg);
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
    ])
    .args(source.input_args())
    .args(["-map", "0:v:0", "-map", "0:a:0?"])
    .args([
        "-vf",
        &format!("scale={}:{}", width_for(p, r.height), r.height),
    ])
    .args([
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "main",
        "-level:v",
        lvl,
    ])
    .args([
        "-pix_fmt",
        "yuv420p",
        "-g",
        "48",
        "-keyint_min",
        "48",
        "-sc_threshold",
        "0",
    ])
    .args([
        "-b:v",
        &format!("{k}k"),
        "-maxrate",
        &format!("{}k", k * 11 / 10),
    ])
    .args(["-bufsize", &format!("{}k", k * 2)])
    .args(["-c:a", "aac", "-b:a", "96k", "-ac", "2"])
    .args(["-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod"])
    .arg("-hls_segment_filename")
    .arg(dir.join("seg_%03d.ts"))
    .arg(dir.join("index.m3u8"))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    log_command(&cmd);
    let mut child = cmd.spawn().context("running ffmpeg")?;
    let stdout = child.stdout.take().context("ffmpeg's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let total_us = p.duration_ms.max(1) * 1000;
    while let Some(line) = lines.next_line().await? {
        if let Some(us) = line.strip_prefix("out_time_us=") {
            if let Ok(us) = us.trim().parse::<u64>() {
                progress((us.min(total_us) * 100 / total_us).min(99) as u8);
            }
        }
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(anyhow!(
            "ffmpeg failed ({}): {}",
            out.status,
            why.trim().chars().take(300).collect::<String>()
        ));
    }
    progress(100);
    Ok(())
}

/// Logs a command's arguments as JSON (`bench/transcode.sh` replays them by hand).
fn log_command(cmd: &Command) {
    let std = cmd.as_std();
    let args: Vec<String> = std::iter::once(std.get_program())
        .chain(std.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    tracing::info!(args = %serde_json::Value::from(args), "ffmpeg command");
}

/// A poster frame (`poster.jpg`, 360 lines high) from a second in, or the middle of a short
/// video.
pub async fn poster(ffmpeg: &str, source: &Source, dest: &Path, p: &Probe) -> anyhow::Result<()> {
    let at = (p.duration_ms / 2).min(1000);
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-y", "-loglevel", "error"])
        .args(["-ss", &format!("{}.{:03}", at / 1000, at % 1000)])
        .args(source.input_args())
        .args(["-frames:v", "1", "-vf", "scale=-2:360", "-q:v", "3"])
        .arg(dest)
        .stdin(Stdio::null());
    log_command(&cmd);
    let out = cmd
        .output()
        .await
        .context("running ffmpeg for the poster")?;
    if !out.status.success() {
        return Err(anyhow!(
            "poster: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// A rendition's bit rates, bits per second: the peak over its segments (what `BANDWIDTH`
/// must be, RFC 8216 §4.3.4.2) and the average over the whole (`AVERAGE-BANDWIDTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Peak segment bit rate.
    pub peak: u64,
    /// Mean bit rate.
    pub average: u64,
}

/// Measures the encoded rendition in `folder` (its `index.m3u8` and segments).
pub async fn measure(folder: &Path) -> anyhow::Result<Measured> {
    let playlist = tokio::fs::read_to_string(folder.join("index.m3u8")).await?;
    let (mut peak, mut bits, mut secs) = (0f64, 0f64, 0f64);
    let mut duration = None;
    for line in playlist.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = d
                .trim_end_matches(',')
                .split(',')
                .next()
                .and_then(|d| d.parse::<f64>().ok());
        } else if !line.starts_with('#') && !line.is_empty() {
            let size = tokio::fs::metadata(folder.join(line)).await?.len() as f64 * 8.0;
            let d = duration.take().unwrap_or(4.0).max(0.1);
            peak = peak.max(size / d);
            bits += size;
            secs += d;
        }
    }
    Ok(Measured {
        peak: peak.ceil() as u64,
        average: (bits / secs.max(0.1)).ceil() as u64,
    })
}

/// The master playlist: the renditions, highest first, with their measured bit rates,
/// `RESOLUTION` and `CODECS`.
pub fn master(p: &Probe, renditions: &[(Rendition, Measured)]) -> String {
    let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (r, measured) in renditions.iter().rev() {
        let (_, avc) = level(r.height);
        let codecs = if p.has_audio {
            format!("avc1.{avc},mp4a.40.2")
        } else {
            format!("avc1.{avc}")
        };
        m.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{codecs}\"\n{}/index.m3u8\n",
            measured.peak,
            measured.average,
            width_for(p, r.height),
            r.height,
            r.name
        ));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder_never_goes_above_the_source() {
        let p = |w, h| Probe {
            width: w,
            height: h,
            duration_ms: 1000,
            has_audio: true,
        };
        let names = |p: &Probe| ladder(p).into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(
            names(&p(1920, 1080)),
            ["240p", "360p", "480p", "720p", "1080p"]
        );
        assert_eq!(names(&p(1280, 720)), ["240p", "360p", "480p", "720p"]);
        assert_eq!(names(&p(640, 350)), ["240p"]);
        assert_eq!(names(&p(320, 181)), ["180p"]);
        assert_eq!(width_for(&p(1920, 1080), 360), 640);
        assert_eq!(
            width_for(&p(1080, 1920), 240),
            136,
            "portrait keeps its shape, even"
        );
    }
}
