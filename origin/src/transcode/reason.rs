//! Why a transcode stage or a rendition failed, as its creator sees it: a code and a short
//! message of ours. Only the code is kept (`last_error`); the error itself, with ffmpeg's and
//! ffprobe's words, local paths and storage answers, goes to the log only.

/// A failure's public reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The file's bytes are not one of the containers uploads may be in.
    UnsupportedMedia,
    /// ffprobe could not read the file.
    UnreadableMedia,
    /// The file holds no video stream.
    NoVideoStream,
    /// The video stream has no usable size, or the file no duration.
    BadDimensions,
    /// The encoder failed on a rendition.
    EncodeFailed,
    /// The poster frame could not be made.
    PosterFailed,
    /// The media store could not be reached.
    StorageUnavailable,
    /// Anything else.
    Internal,
}

const ALL: [Reason; 8] = [
    Reason::UnsupportedMedia,
    Reason::UnreadableMedia,
    Reason::NoVideoStream,
    Reason::BadDimensions,
    Reason::EncodeFailed,
    Reason::PosterFailed,
    Reason::StorageUnavailable,
    Reason::Internal,
];

impl Reason {
    /// The code kept and shown.
    pub fn code(self) -> &'static str {
        match self {
            Self::UnsupportedMedia => "unsupported_media",
            Self::UnreadableMedia => "unreadable_media",
            Self::NoVideoStream => "no_video_stream",
            Self::BadDimensions => "bad_dimensions",
            Self::EncodeFailed => "encode_failed",
            Self::PosterFailed => "poster_failed",
            Self::StorageUnavailable => "storage_unavailable",
            Self::Internal => "internal",
        }
    }

    /// What the creator reads.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnsupportedMedia => {
                "the file is not an MP4, QuickTime, Matroska, WebM or MPEG-TS video"
            }
            Self::UnreadableMedia => "the file could not be read as a video",
            Self::NoVideoStream => "the file has no video stream",
            Self::BadDimensions => "the video has no usable size or duration",
            Self::EncodeFailed => "encoding this rendition failed",
            Self::PosterFailed => "the poster frame could not be made",
            Self::StorageUnavailable => "the media store could not be reached",
            Self::Internal => "an internal error stopped the transcoding",
        }
    }

    /// The reason a kept code stands for (a code this version does not know, or text an older
    /// version kept, reads as [`Reason::Internal`], never shown as it is).
    pub fn from_code(code: &str) -> Self {
        ALL.into_iter()
            .find(|r| r.code() == code)
            .unwrap_or(Self::Internal)
    }

    /// The file's fault: trying again cannot mend it.
    pub fn permanent(self) -> bool {
        matches!(
            self,
            Self::UnsupportedMedia
                | Self::UnreadableMedia
                | Self::NoVideoStream
                | Self::BadDimensions
        )
    }

    /// `{code, message}`, as the status API shows it.
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({"code": self.code(), "message": self.message()})
    }
}

/// An error that knows its public reason.
#[derive(Debug)]
pub struct Failed(pub Reason, pub anyhow::Error);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {:#}", self.0.code(), self.1)
    }
}

impl std::error::Error for Failed {}

/// The reason an error shows ([`Reason::Internal`] unless it is a [`Failed`]).
pub fn of(e: &anyhow::Error) -> Reason {
    e.downcast_ref::<Failed>().map_or(Reason::Internal, |f| f.0)
}

/// Tags an error with the reason it shows.
pub trait Because<T> {
    /// `Err(e)` becomes a [`Failed`] with `reason`.
    fn because(self, reason: Reason) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> Because<T> for Result<T, E> {
    fn because(self, reason: Reason) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::Error::new(Failed(reason, e.into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_and_unknown_text_stays_hidden() {
        for r in ALL {
            assert_eq!(Reason::from_code(r.code()), r);
        }
        let old = "probe: ffprobe cannot read the file: /srv/upload/work/x: Invalid data";
        assert_eq!(Reason::from_code(old), Reason::Internal);
    }

    #[test]
    fn a_tagged_error_keeps_its_reason_through_context() {
        let e: anyhow::Error = Err::<(), _>(anyhow::anyhow!("ffmpeg said this"))
            .because(Reason::EncodeFailed)
            .unwrap_err();
        assert_eq!(of(&e), Reason::EncodeFailed);
        assert_eq!(of(&e.context("more")), Reason::EncodeFailed);
        assert_eq!(of(&anyhow::anyhow!("plain")), Reason::Internal);
    }
}
