//! What an uploaded file is, from its first bytes, and how ffmpeg must open it.
//!
//! Trust boundary: an upload's bytes are the creator's, and its declared type is only a claim.
//! ffmpeg picks a demuxer by content unless told, and some demuxers (HLS and DASH playlists,
//! `ffconcat` lists, image sequences, subtitle formats with includes) open the files and URLs
//! the content names: a "video" that is a playlist would re-encode another creator's media, or
//! make the origin fetch internal addresses. So an upload is accepted only when its bytes start
//! as one of three containers that name no other resources, agreeing with its declared type, and
//! every ffmpeg or ffprobe run that reads a source is given that container's demuxer and may open
//! nothing but the one local file ([`Container::input_args`]).

use std::ffi::OsString;
use std::path::Path;

use tokio::io::AsyncReadExt;

/// How many leading bytes [`Container::sniff`] looks at.
pub const HEAD: usize = 1024;

/// The containers uploads may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// ISO base media (MP4) and QuickTime (MOV): a box structure.
    IsoBmff,
    /// Matroska and WebM: an EBML document.
    Matroska,
    /// MPEG transport stream: 188-byte packets, each starting with the sync byte 0x47.
    MpegTs,
}

/// The QuickTime top-level atoms a file may start with (MP4 always starts with `ftyp`; older
/// QuickTime files with one of the others).
const FIRST_ATOMS: [&[u8; 4]; 6] = [b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"];

const TS_PACKET: usize = 188;
const TS_SYNC: u8 = 0x47;

impl Container {
    /// The container the bytes start as, if one of ours. `head` is the file's first [`HEAD`]
    /// bytes (or all of it, if shorter).
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
            return Some(Self::Matroska);
        }
        if head.len() >= 8 {
            let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            // 0: to the end of the file; 1: a 64-bit size follows; otherwise at least the header.
            let sized = size == 0 || size == 1 || size >= 8;
            if sized && FIRST_ATOMS.iter().any(|a| head[4..8] == a[..]) {
                return Some(Self::IsoBmff);
            }
        }
        // At least three packets, every packet start within the head a sync byte.
        let mut starts = (0..head.len()).step_by(TS_PACKET);
        if head.len() > 2 * TS_PACKET && starts.all(|i| head[i] == TS_SYNC) {
            return Some(Self::MpegTs);
        }
        None
    }

    /// The container a declared content type (as the upload URL lists them) means.
    pub fn of_type(mime: &str) -> Option<Self> {
        match mime {
            "video/mp4" | "video/quicktime" => Some(Self::IsoBmff),
            "video/webm" | "video/x-matroska" => Some(Self::Matroska),
            "video/mp2t" => Some(Self::MpegTs),
            _ => None,
        }
    }

    /// ffmpeg's demuxer for it.
    pub fn demuxer(self) -> &'static str {
        match self {
            Self::IsoBmff => "mov",
            Self::Matroska => "matroska",
            Self::MpegTs => "mpegts",
        }
    }

    /// The arguments that open `path` as this container and nothing else: the demuxer named
    /// (never probed), only the `file` protocol allowed, and the path given as a `file:` URL so
    /// that no part of it reads as another protocol.
    pub fn input_args(self, path: &Path) -> Vec<OsString> {
        let mut url = OsString::from("file:");
        url.push(path.as_os_str());
        ["-protocol_whitelist", "file", "-f", self.demuxer(), "-i"]
            .into_iter()
            .map(OsString::from)
            .chain([url])
            .collect()
    }

    /// Reads the head of the file at `path` and sniffs it.
    pub async fn of_file(path: &Path) -> std::io::Result<Option<Self>> {
        let mut head = Vec::with_capacity(HEAD);
        tokio::fs::File::open(path)
            .await?
            .take(HEAD as u64)
            .read_to_end(&mut head)
            .await?;
        Ok(Self::sniff(&head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(packets: usize) -> Vec<u8> {
        (0..packets)
            .flat_map(|_| {
                let mut p = vec![0u8; TS_PACKET];
                p[0] = TS_SYNC;
                p
            })
            .collect()
    }

    #[test]
    fn the_three_containers_are_told_by_their_first_bytes() {
        let mp4 = [&[0, 0, 0, 0x20][..], b"ftypisom", &[0; 20]].concat();
        assert_eq!(Container::sniff(&mp4), Some(Container::IsoBmff));
        let mov = [&[0, 0, 0, 8][..], b"wide", &[0, 0, 0, 0], b"mdat"].concat();
        assert_eq!(Container::sniff(&mov), Some(Container::IsoBmff));
        let mkv = [0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81];
        assert_eq!(Container::sniff(&mkv), Some(Container::Matroska));
        assert_eq!(Container::sniff(&ts(3)), Some(Container::MpegTs));
        assert_eq!(Container::sniff(&ts(40)[..HEAD]), Some(Container::MpegTs));
    }

    #[test]
    fn anything_else_is_none() {
        for text in [
            &b"#EXTM3U\n#EXTINF:4,\n/etc/passwd\n"[..],
            b"<?xml version=\"1.0\"?><MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\">",
            b"ffconcat version 1.0\nfile '/srv/media/x/360p/seg_000.ts'\n",
            b"WEBVTT\n\n",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
            b"",
            b"ftyp", // too short for a box
        ] {
            assert_eq!(
                Container::sniff(text),
                None,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        // A box type we do not accept, a size smaller than a box header.
        assert_eq!(Container::sniff(b"\0\0\0\x20M3U\nabcd"), None);
        assert_eq!(Container::sniff(b"\0\0\0\x04ftypisom"), None);
        // Two packets are not enough; a broken third sync byte is not a stream.
        assert_eq!(Container::sniff(&ts(2)), None);
        let mut broken = ts(5);
        broken[3 * TS_PACKET] = b'#';
        assert_eq!(Container::sniff(&broken), None);
        // A playlist that happens to start with the sync byte.
        assert_eq!(Container::sniff(b"G#EXTM3U\n"), None);
    }

    #[test]
    fn declared_types_map_to_containers() {
        assert_eq!(Container::of_type("video/mp4"), Some(Container::IsoBmff));
        assert_eq!(
            Container::of_type("video/quicktime"),
            Some(Container::IsoBmff)
        );
        assert_eq!(Container::of_type("video/webm"), Some(Container::Matroska));
        assert_eq!(
            Container::of_type("video/x-matroska"),
            Some(Container::Matroska)
        );
        assert_eq!(Container::of_type("video/mp2t"), Some(Container::MpegTs));
        assert_eq!(Container::of_type("application/x-mpegurl"), None);
    }

    #[test]
    fn input_args_name_the_demuxer_and_allow_only_the_file() {
        let args = Container::MpegTs.input_args(Path::new("/w/src:http://x"));
        let args: Vec<_> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "-protocol_whitelist",
                "file",
                "-f",
                "mpegts",
                "-i",
                "file:/w/src:http://x"
            ]
        );
    }
}
